//! The HTML shell and the router: which page answers which path.

use crate::routes::{
    EventPage, ModelsPage, NotFoundPage, OverviewPage, SegmentsPage, SettingsPage, ToolsPage, TracePage,
    TracesPage, UserPage, UsersPage,
};
use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The document around the app: hydration scripts, stylesheet, meta tags.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The bundle's directory names the build (`pkg/<version>`): cached for good, see assets.rs.
    let stylesheet = format!("/{}/tokentally.css", options.site_pkg_dir);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="stylesheet" href=stylesheet/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The dashboard: sidebar, section tabs, and the routed page. Pages render `Async` on the server
/// (the whole table in the first response) so that they work before hydration and without JS.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    crate::components::provide_session();
    view! {
        <Title text="tokentally"/>
        <Router>
            <div class="layout">
                <nav class="sidebar" aria-label="Sections">
                    <a class="brand" href="/ai-apps">"tokentally"</a>
                    <A href="/ai-apps" attr:class="section">"AI Apps"</A>
                    <crate::components::Account/>
                </nav>
                <main>
                    <Routes fallback=NotFoundPage>
                        <Route path=path!("/ai-apps") view=OverviewPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/models") view=ModelsPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/tools") view=ToolsPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/segments") view=SegmentsPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/users") view=UsersPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/users/:user_id") view=UserPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/traces") view=TracesPage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/traces/:trace_id") view=TracePage ssr=SsrMode::Async/>
                        <Route path=path!("/ai-apps/events/:event_id") view=EventPage ssr=SsrMode::Async/>
                        <Route path=path!("/settings") view=SettingsPage ssr=SsrMode::Async/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
