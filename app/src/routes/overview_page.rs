//! AI Apps → Overview: KPIs against the previous window, spend over time by model, top users
//! and models. The body is rendered on the server (`render::overview`).

use crate::api::{Answer, ServerPart, get_overview};
use crate::components::{SectionTabs, TagPills, WindowPills, refetch_on_new_data, shared_filters};
use leptos::prelude::*;

/// The Overview's path.
pub const OVERVIEW: &str = "/ai-apps";

/// The Overview's body, rendered on the server.
#[cfg(feature = "ssr")]
pub mod render {
    use crate::api::Rendered;
    use crate::components::SpendChart;
    use crate::components::users_table::{count, short_time};
    use crate::model::money::{abbreviate_count, abbreviate_usd, tenths_percent};
    use crate::model::query::encode;
    use crate::model::{Charted, Kpis, Overview, Stack, UsersParams, format_usd};
    use leptos::prelude::*;

    /// The body for `o`: `filters` is the query the "all users/models" links keep, `params` and
    /// `base` make the chart's stack toggle (on a user's page, their path without the user filter).
    pub fn overview(o: Charted<Overview>, filters: String, params: UsersParams, base: String) -> Rendered {
        Rendered::of(move || view! { <OverviewView o filters params base/> })
    }

    /// `+12% vs previous window` / `−3% …` / `none in the previous window`.
    fn change(now: i64, before: i64) -> String {
        match (now, before) {
            (0, 0) => "none in either window".into(),
            (_, 0) => "none in the previous window".into(),
            _ => {
                let pct = (now - before) * 100 / before;
                let sign = if pct >= 0 { "+" } else { "−" };
                format!("{sign}{}% vs previous window", pct.abs())
            }
        }
    }

    /// Error rate in tenths of a percent, shown as `2.5%`.
    fn rate(errors: i64, calls: i64) -> String {
        if calls == 0 {
            return "—".into();
        }
        tenths_percent(errors * 1000 / calls)
    }

    /// A KPI's figure: `shown`, and when that is abbreviated the exact figure on hover
    /// (`<abbr title>`).
    #[component]
    fn KpiCard(label: &'static str, shown: String, exact: String, delta: String) -> impl IntoView {
        let value = if shown == exact {
            view! { <div class="kpi-value">{shown}</div> }.into_any()
        } else {
            view! { <div class="kpi-value"><abbr title=exact>{shown}</abbr></div> }.into_any()
        };
        view! {
            <div class="kpi" role="group" aria-label=label>
                <div class="kpi-label">{label}</div>
                {value}
                <div class="kpi-delta">{delta}</div>
            </div>
        }
    }

    fn cards(now: &Kpis, before: &Kpis) -> impl IntoView + use<> {
        let counted = |label: &'static str, now: i64, before: i64| {
            view! { <KpiCard label shown=abbreviate_count(now) exact=count(now) delta=change(now, before)/> }
        };
        let rate_now = rate(now.errors, now.calls);
        view! {
            <div class="kpis">
                <KpiCard label="Spend" shown=abbreviate_usd(now.spend_nano) exact=format_usd(now.spend_nano) delta=change(now.spend_nano, before.spend_nano)/>
                {counted("Traces", now.traces, before.traces)}
                {counted("LLM calls", now.calls, before.calls)}
                {counted("Tokens", now.tokens, before.tokens)}
                {counted("Active users", now.active_users, before.active_users)}
                <KpiCard label="Error rate" shown=rate_now.clone() exact=rate_now delta=format!("{} in the previous window", rate(before.errors, before.calls))/>
                {counted("Unpriced calls", now.unpriced, before.unpriced)}
            </div>
        }
    }

    /// "by model · by provider": links switching what the spend chart stacks by.
    fn stack_toggle(params: &UsersParams, base: &str) -> impl IntoView + use<> {
        let links = [Stack::Model, Stack::Provider]
            .into_iter()
            .map(|stack| {
                let href = format!("{base}{}", UsersParams { stack, ..params.clone() }.to_query());
                let current = if params.stack == stack { "true" } else { "false" };
                view! { <a href=href class="pill" aria-current=current>{format!("by {}", stack.as_str())}</a> }
            })
            .collect_view();
        view! { <nav class="pills stack-toggle" aria-label="Stack the chart">{links}</nav> }
    }

    /// The Overview's body for already-read data (also used on a user's page, whose path is `base`).
    #[component]
    fn OverviewView(
        o: Charted<Overview>,
        filters: String,
        params: UsersParams,
        base: String,
    ) -> impl IntoView {
        let Charted { view: o, chart_svg } = o;
        let chart =
            view! { <SpendChart series=o.spend_by_model.clone() svg=chart_svg by=params.stack.as_str()/> };
        let users = o
            .top_users
            .iter()
            .map(|u| {
                let href = format!("/ai-apps/users/{}", encode(&u.user_id));
                view! { <tr><th scope="row"><a href=href>{u.user_id.clone()}</a></th><td class="num">{format_usd(u.spend_nano)}</td><td class="num">{count(u.events)}</td></tr> }
            })
            .collect_view();
        let models = o
            .top_models
            .iter()
            .map(|m| view! { <tr><th scope="row" class="model">{m.model.clone()}</th><td>{m.provider.clone()}</td><td class="num">{format_usd(m.spend_nano)}</td><td class="num">{count(m.calls)}</td></tr> })
            .collect_view();
        view! {
            <p class="range">{format!("{} to {} UTC", short_time(&o.from), short_time(&o.to))}</p>
            {cards(&o.current, &o.previous)}
            <h2>"Spend over time" {stack_toggle(&params, &base)}</h2>
            {chart}
            <div class="two-col">
                <section>
                    <h2>"Top users " <a class="more" href=format!("/ai-apps/users{filters}")>"all users →"</a></h2>
                    <table class="data" aria-label="Top users"><thead><tr><th scope="col">"User"</th><th scope="col" class="num">"Spend"</th><th scope="col" class="num">"Calls"</th></tr></thead><tbody>{users}</tbody></table>
                </section>
                <section>
                    <h2>"Top models " <a class="more" href=format!("/ai-apps/models{filters}")>"all models →"</a></h2>
                    <table class="data" aria-label="Top models"><thead><tr><th scope="col">"Model"</th><th scope="col">"Provider"</th><th scope="col" class="num">"Spend"</th><th scope="col" class="num">"Calls"</th></tr></thead><tbody>{models}</tbody></table>
                </section>
            </div>
        }
    }
}

/// The Overview.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let (raw, params) = super::use_view_query::<crate::model::UserSort>();
    let overview = Answer::new(move || raw.get(), |q| get_overview(q.trim_start_matches('?').to_string()));
    refetch_on_new_data(move || overview.refetch());
    view! {
        <section class="page">
            {move || { let filters = shared_filters(&params.get()); view! { <SectionTabs active="overview" filters/> } }}
            <header class="page-head">
                <h1>"Overview"</h1>
                {move || view! { <WindowPills params=params.get() base=OVERVIEW/> }}
            </header>
            {move || view! { <TagPills params=params.get() base=OVERVIEW/> }}
            <ServerPart answer=overview/>
        </section>
    }
}
