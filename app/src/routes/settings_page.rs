//! Settings of the current project: privacy mode, retention, API keys and the deletion log.

use crate::api::Answer;
use crate::api::get_settings;
use crate::model::admin::{Privacy, SettingsView};
use leptos::prelude::*;

use crate::model::admin::utc_minute as date;

#[component]
fn Settings(s: SettingsView) -> impl IntoView {
    let p = s.project.clone();
    let csrf = s.csrf.clone();
    let privacy_note = match (p.privacy, p.privacy_changed_at) {
        (Privacy::Minimal, Some(t)) => format!(
            "Minimal since {}: prompts and responses of calls ingested since then were never stored. Earlier calls keep theirs.",
            date(t)
        ),
        (Privacy::Minimal, None) => {
            "Minimal: prompts and responses are dropped at ingest and never reach the disk.".to_string()
        }
        (Privacy::Full, Some(t)) => {
            format!("Full since {}: prompts and responses are kept for calls ingested since then.", date(t))
        }
        (Privacy::Full, None) => "Full: prompts and responses are kept.".to_string(),
    };
    let retention_note = match p.retention_days {
        Some(d) => format!(
            "Events and rollups older than {d} days (whole UTC days) are deleted by a background task, in small batches."
        ),
        None => "Everything is kept.".to_string(),
    };
    let keys = s
        .keys
        .iter()
        .map(|k| {
            let status = k.revoked_at.map_or("live".to_string(), |t| format!("revoked {}", date(t)));
            let revoke = k.revoked_at.is_none().then(|| {
                view! {
                    <form method="post" action="/settings/keys/revoke">
                        <input type="hidden" name="csrf" value=csrf.clone()/>
                        <input type="hidden" name="id" value=k.id.to_string()/>
                        <button type="submit" aria-label=format!("Revoke {}", k.prefix)>"Revoke"</button>
                    </form>
                }
            });
            view! {
                <tr>
                    <th scope="row"><code>{format!("{}…", k.prefix)}</code></th>
                    <td>{k.scope.clone()}</td>
                    <td>{date(k.created_at)}</td>
                    <td>{status}</td>
                    <td>{revoke}</td>
                </tr>
            }
        })
        .collect_view();
    let deletions = s
        .deletions
        .iter()
        .map(|d| {
            view! {
                <tr>
                    <td>{date(d.at)}</td>
                    <td>{d.actor.clone()}</td>
                    <td><code>{if d.user_id_hmac.is_empty() { "—".to_string() } else { format!("{}…", &d.user_id_hmac[..16.min(d.user_id_hmac.len())]) }}</code></td>
                    <td class="num">{d.events}</td>
                    <td class="num">{d.traces}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <h2>"Privacy and retention"</h2>
        <form method="post" action="/settings/project" class="settings-form" aria-label="Project settings">
            <input type="hidden" name="csrf" value=s.csrf.clone()/>
            <label>"Privacy mode "
                <select name="privacy" aria-label="Privacy mode">
                    <option value="full" selected=p.privacy == Privacy::Full>"full: keep prompts and responses"</option>
                    <option value="minimal" selected=p.privacy == Privacy::Minimal>"minimal: drop them at ingest"</option>
                </select>
            </label>
            <label>"Retention (days, empty keeps everything) "
                <input name="retention_days" aria-label="Retention days" inputmode="numeric" value=p.retention_days.map(|d| d.to_string()).unwrap_or_default()/>
            </label>
            <button type="submit">"Save"</button>
            <p class="note" role="note">{privacy_note}" A change of mode applies to calls ingested after it."</p>
            <p class="note">{retention_note}</p>
        </form>
        <h2>"API keys"</h2>
        <table class="data" aria-label="API keys">
            <thead><tr><th scope="col">"Key"</th><th scope="col">"Scope"</th><th scope="col">"Created"</th><th scope="col">"Status"</th><th></th></tr></thead>
            <tbody>{keys}</tbody>
        </table>
        <form method="post" action="/settings/keys" class="settings-form" aria-label="New key">
            <input type="hidden" name="csrf" value=s.csrf.clone()/>
            <label>"New key with scope "
                <select name="scope" aria-label="Scope">
                    <option value="ingest">"ingest: send events"</option>
                    <option value="read">"read: read API"</option>
                    <option value="admin">"admin: read API, deletion and settings"</option>
                </select>
            </label>
            <button type="submit">"Create key"</button>
        </form>
        <h2>"Deleted users"</h2>
        <table class="data" aria-label="Deleted users">
            <thead><tr><th scope="col">"When"</th><th scope="col">"By"</th><th scope="col">"User id (HMAC)"</th><th scope="col" class="num">"Events"</th><th scope="col" class="num">"Traces"</th></tr></thead>
            <tbody>{deletions}</tbody>
        </table>
    }
}

/// The settings page.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let settings = Answer::new(|| (), |_| get_settings());
    view! {
        <section class="page">
            <header class="page-head"><h1>"Settings"</h1></header>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Ok(s) => {
                            let name = s.project.name.clone();
                            view! { <p class="range">"Project " <strong>{name}</strong></p> <Settings s/> }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
