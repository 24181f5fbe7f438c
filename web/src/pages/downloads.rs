//! Downloads on the library page: one button per platform with a current build; a click asks for
//! a signed, short-lived link (`downloadLink`) and sends the browser to it (the gateway serves
//! the file, resumable), then shows the file's size and SHA-256 to check it.

use domain::ErrorCode;
use leptos::prelude::*;

use crate::api;
use crate::api::ApiError;
use crate::api::queries::{DownloadLink, download_link, library_page};
use crate::pages::notice::{error_alert, human_size, platform_label, short_sha};

type CurrentBuild = library_page::LibraryPageLibraryNodesCurrentBuilds;
type Link = download_link::DownloadLinkDownloadLink;

fn download_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Forbidden => {
            Some("You do not own this product (any more), so it cannot be downloaded.")
        }
        ErrorCode::NotFound => {
            Some("There is no build for this platform right now. Try again later.")
        }
        _ => None,
    }
}

/// The downloads of one library item.
#[component]
pub fn Downloads(product_id: String, builds: Vec<CurrentBuild>) -> impl IntoView {
    if builds.is_empty() {
        return view! {
            <p class="muted downloads downloads--none">"No download yet: the publisher has not released a build."</p>
        }
        .into_any();
    }
    view! {
        <ul class="downloads" aria-label="Downloads">
            {builds.into_iter().map(|build| view! { <DownloadRow product_id=product_id.clone() current=build /> }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn DownloadRow(product_id: String, current: CurrentBuild) -> impl IntoView {
    let build = current;
    let platform = build.platform.clone();
    let label = platform_label(&build.platform);
    let fetch = Action::new_local(move |(): &()| {
        let variables = download_link::Variables {
            product_id: product_id.clone(),
            platform: platform.clone(),
        };
        async move {
            let link = api::request::<DownloadLink>(variables).await?.download_link;
            // A plain navigation: the file comes as an attachment, the app stays.
            window()
                .location()
                .set_href(&link.url)
                .map_err(|_| ApiError {
                    message: "The browser refused to start the download.".to_owned(),
                    code: None,
                    field: None,
                })?;
            Ok::<Link, ApiError>(link)
        }
    });
    let sha = build.sha256.clone().unwrap_or_default();
    view! {
        <li class="download">
            <div class="download__what">
                <strong>{label.clone()}</strong>
                <span class="muted">
                    {format!(" {} · {} · {}", build.version_label, build.file_name, human_size(build.size_bytes))}
                </span>
                {(!sha.is_empty()).then(|| view! {
                    <span class="muted">" · SHA-256 " <code class="sha" title=sha.clone()>{short_sha(&sha)}</code></span>
                })}
            </div>
            <button
                class="button button--primary"
                type="button"
                disabled=move || fetch.pending().get()
                on:click=move |_| { fetch.dispatch(()); }
            >
                "Download"
                <span class="visually-hidden">{format!(" for {label}")}</span>
            </button>
            <div class="download__outcome" aria-live="polite">
                {move || fetch.value().get().map(|result| match result {
                    Ok(link) => view! {
                        <p class="alert alert--ok" role="status">
                            {format!("Downloading {} ({}). Check it against SHA-256 ", link.file_name, human_size(link.size_bytes))}
                            <code class="sha sha--full">{link.sha256}</code>
                            ". "
                            <a href=link.url.clone() download=link.file_name.clone()>"Download again"</a>
                            <span class="muted">{format!(" (link valid until {})", crate::components::short_time(&link.expires_at))}</span>
                        </p>
                    }.into_any(),
                    Err(error) => error_alert(&error, download_known).into_any(),
                })}
            </div>
        </li>
    }
}
