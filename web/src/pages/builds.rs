//! A product's builds on the publisher's dashboard: every build (platform, version, status,
//! size, checksum, the current one of each platform), a form that announces a build
//! (`createBuild`) and sends its file (`PUT uploadPath`, with a progress bar and a retry), and
//! "Make current" (`setCurrentBuild`, also the rollback to an older build).

use leptos::html;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use web_sys::File;

use crate::api;
use crate::api::ApiError;
use crate::api::queries::{
    CreateBuild, ProductBuilds, SetCurrentBuild, create_build, product_builds, set_current_build,
};
use crate::api::session::enum_name;
use crate::api::upload::{UploadedBuild, upload_build_file};
use crate::components::{Loading, Markdown, Mounted, focus_first_invalid, short_time};
use crate::pages::notice::{
    error_alert, human_size, load_error, ok_status, platform_label, short_sha,
};
use domain::ErrorCode;

type Build = product_builds::ProductBuildsProductBuilds;

/// The "Builds" section of a product: a disclosure that loads the builds when opened.
#[component]
pub fn Builds(product_id: String) -> impl IntoView {
    let open = RwSignal::new(false);
    let panel_id = format!("builds-{product_id}");
    let heading_id = format!("builds-title-{product_id}");
    view! {
        <section class="builds" aria-labelledby=heading_id.clone()>
            <h3 class="builds__heading" id=heading_id.clone()>
                <button
                    type="button"
                    class="disclosure"
                    aria-expanded=move || open.get().to_string()
                    aria-controls=panel_id.clone()
                    on:click=move |_| open.update(|o| *o = !*o)
                >
                    "Builds"
                </button>
            </h3>
            <div id=panel_id class="builds__panel" hidden=move || !open.get()>
                <Show when=move || open.get()>
                    <BuildsPanel product_id=product_id.clone() />
                </Show>
            </div>
        </section>
    }
}

fn make_current_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Conflict => Some("Only a build whose file is uploaded can be made current."),
        ErrorCode::NotFound => Some("This build no longer exists."),
        ErrorCode::Forbidden => {
            Some("Only the product's publisher (or an admin) chooses its builds.")
        }
        _ => None,
    }
}

fn create_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Conflict => {
            Some("This version label already exists for this platform: choose another one.")
        }
        ErrorCode::Forbidden => Some("Only the product's publisher (or an admin) adds builds."),
        _ => None,
    }
}

fn upload_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::BadUserInput => Some(
            "The store received another file than announced (its size or checksum differs). \
             Nothing was kept: send the file again.",
        ),
        ErrorCode::Conflict => {
            Some("This build's file is already uploaded, or another upload of it is under way.")
        }
        ErrorCode::NotFound => Some("This build no longer exists."),
        ErrorCode::Forbidden => Some("Only the product's publisher (or an admin) uploads builds."),
        _ => None,
    }
}

#[component]
fn BuildsPanel(product_id: String) -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    let id = product_id.clone();
    let product = LocalResource::new(move || {
        reload.track();
        let id = id.clone();
        async move {
            api::request::<ProductBuilds>(product_builds::Variables { id })
                .await
                .map(|data| data.product)
        }
    });
    // A memo: reloading the builds must not rebuild the platform options (and their choice).
    let platforms = Signal::from(Memo::new(move |_| {
        product
            .get()
            .and_then(Result::ok)
            .map(|p| p.platforms)
            .unwrap_or_default()
    }));
    let make_current = Action::new_local(move |build_id: &String| {
        let build_id = build_id.clone();
        async move {
            let result = api::request::<SetCurrentBuild>(set_current_build::Variables { build_id })
                .await
                .map(|_| ());
            reload.update(|v| *v += 1);
            result
        }
    });
    view! {
        <div role="status" aria-live="polite">
            {move || make_current.value().get().map(|result| match result {
                Ok(()) => ok_status("Made current: owners now download this build.".to_owned()).into_any(),
                Err(error) => error_alert(&error, make_current_known).into_any(),
            })}
        </div>
        <Transition fallback=|| view! { <Loading label="Loading the builds…" /> }>
            {move || Suspend::new(async move {
                match mounted.data(product).await {
                    Err(error) => load_error(&error, reload).into_any(),
                    Ok(product) if product.builds.is_empty() => view! {
                        <p class="muted">"No builds yet: announce the first one below."</p>
                    }.into_any(),
                    Ok(product) => view! {
                        <ul class="list builds__list">
                            {product.builds.into_iter().map(|build| view! {
                                <BuildRow entry=build make_current reload />
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
        <NewBuild product_id platforms make_current reload />
    }
}

#[component]
fn BuildRow(
    entry: Build,
    make_current: Action<String, Result<(), ApiError>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let build = entry;
    let status = enum_name(&build.status);
    let ready = status == "READY";
    let what = format!(
        "{} {}",
        platform_label(&build.platform),
        build.version_label
    );
    let id = build.id.clone();
    let sha = build.sha256.clone().unwrap_or_default();
    let when = build
        .uploaded_at
        .as_deref()
        .map(|at| format!("uploaded {}", short_time(at)))
        .unwrap_or_else(|| format!("announced {}", short_time(&build.created_at)));
    view! {
        <li class="list__item build">
            <div class="build__main">
                <p class="build__title">
                    <strong>{what.clone()}</strong>
                    {build.is_current.then(|| view! { <span class="badge badge--current">"Current"</span> })}
                    " "
                    <span class=if ready { "status status--ok" } else { "status status--pending" }>
                        {if ready { "Ready" } else { "Uploading" }}
                    </span>
                </p>
                <p class="muted build__meta">
                    <span>{build.file_name.clone()}</span>
                    " · "
                    <span>{human_size(build.size_bytes)}</span>
                    {(!sha.is_empty()).then(|| view! {
                        " · SHA-256 " <code class="sha" title=sha.clone()>{short_sha(&sha)}</code>
                    })}
                    " · "
                    <span>{when}</span>
                </p>
                {(!build.release_notes.trim().is_empty()).then(|| view! {
                    <details class="build__notes">
                        <summary>"Release notes"</summary>
                        <Markdown text=build.release_notes.clone() />
                    </details>
                })}
            </div>
            {match (ready, build.is_current, build.upload_path.clone()) {
                (true, false, _) => view! {
                    <button
                        class="button"
                        type="button"
                        disabled=move || make_current.pending().get()
                        on:click=move |_| { make_current.dispatch(id.clone()); }
                    >
                        "Make current"
                        <span class="visually-hidden">{format!(" {what}")}</span>
                    </button>
                }.into_any(),
                (false, _, Some(path)) => view! {
                    <ResumeUpload path size=build.size_bytes what reload />
                }.into_any(),
                _ => ().into_any(),
            }}
        </li>
    }
}

/// The progress of a file being sent.
#[component]
fn Progress(sent: RwSignal<Option<f64>>, #[prop(into)] label: String) -> impl IntoView {
    move || {
        sent.get().map(|fraction| {
            let percent = (fraction * 100.0).round();
            view! {
                <div class="progress">
                    <progress max="100" value=percent aria-label=label.clone()>
                        {format!("{percent:.0}%")}
                    </progress>
                    <span class="muted" aria-hidden="true">{format!("{percent:.0}%")}</span>
                </div>
            }
        })
    }
}

/// The file of a build announced earlier that never finished uploading: pick it and send it.
#[component]
fn ResumeUpload(path: String, size: i64, what: String, reload: RwSignal<u32>) -> impl IntoView {
    let sent = RwSignal::new(None::<f64>);
    let input_id = format!("resume-{}", path.rsplit('/').next().unwrap_or_default());
    let upload = Action::new_local(move |(path, file): &(String, SendWrapper<File>)| {
        let path = path.clone();
        let file = file.clone();
        async move {
            if file.size() as i64 != size {
                return Err(ApiError {
                    message: format!(
                        "This file has {}; the build was announced with {}.",
                        human_size(file.size() as i64),
                        human_size(size)
                    ),
                    code: None,
                    field: Some("file".to_owned()),
                });
            }
            sent.set(Some(0.0));
            let result = upload_build_file(&path, &file, move |f| sent.set(Some(f))).await;
            sent.set(None);
            if result.is_ok() {
                reload.update(|v| *v += 1);
            }
            result
        }
    });
    view! {
        <div class="upload build__resume">
            <label for=input_id.clone()>{format!("Upload the file of {what}")}</label>
            <input
                id=input_id
                type="file"
                disabled=move || upload.pending().get()
                on:change=move |ev| {
                    let input: web_sys::HtmlInputElement = event_target(&ev);
                    if let Some(file) = input.files().and_then(|files| files.get(0)) {
                        upload.dispatch((path.clone(), SendWrapper::new(file)));
                    }
                }
            />
            <Progress sent label=format!("Upload of {what}") />
            {move || upload.value().get().and_then(Result::err).map(|error| error_alert(&error, upload_known))}
        </div>
    }
}

/// Why announcing or sending a build failed, and whether sending it again may help.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    error: ApiError,
    /// The build exists and still waits for its file: "Retry" sends it again.
    retry: bool,
}

/// What the form runs: announce a build and send its file, or send the file again.
enum Step {
    Create(create_build::CreateBuildInput),
    Retry,
}

/// The name a build is downloaded under: letters, digits, `.`, `_`, `-` (up to 128).
fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if cleaned.trim_matches(['.', '-', '_']).is_empty() {
        "build".to_owned()
    } else {
        cleaned
    }
}

#[component]
fn NewBuild(
    product_id: String,
    platforms: Signal<Vec<String>>,
    make_current: Action<String, Result<(), ApiError>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let ids = format!("build-{product_id}");
    let platform = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let file = StoredValue::new_local(None::<File>);
    let chosen = RwSignal::new(None::<(String, i64)>);
    let invalid = RwSignal::new(None::<(&'static str, String)>);
    // The announced build being uploaded: (id, upload path).
    let current = StoredValue::new(None::<(String, String)>);
    let sent = RwSignal::new(None::<f64>);
    let file_input = NodeRef::<html::Input>::new();

    let run = Action::new_local(move |step: &SendWrapper<Step>| {
        let create = match &**step {
            Step::Create(input) => Some(input.clone()),
            Step::Retry => None,
        };
        let file = file.get_value();
        // Read now: after the first answer the form may be gone (the page left), `current` with it.
        let announced = current.get_value();
        async move {
            let Some(file) = file else {
                return Err(Failure {
                    error: ApiError {
                        message: "Choose the file first.".to_owned(),
                        code: None,
                        field: Some("file".to_owned()),
                    },
                    retry: false,
                });
            };
            let path = match create {
                Some(input) => {
                    let build = api::request::<CreateBuild>(create_build::Variables { input })
                        .await
                        .map_err(|error| Failure {
                            error,
                            retry: false,
                        })?
                        .create_build;
                    let path = build.upload_path.unwrap_or_default();
                    current.set_value(Some((build.id, path.clone())));
                    Some(path)
                }
                None => announced.map(|(_, path)| path),
            };
            let Some(path) = path else {
                return Err(Failure {
                    error: ApiError {
                        message: "Announce the build first.".to_owned(),
                        code: None,
                        field: None,
                    },
                    retry: false,
                });
            };
            sent.set(Some(0.0));
            let result = upload_build_file(&path, &file, move |f| sent.set(Some(f))).await;
            sent.set(None);
            match result {
                Ok(build) => {
                    reload.update(|v| *v += 1);
                    Ok(build)
                }
                Err(error) => {
                    let retry = !matches!(
                        error.code,
                        Some(
                            ErrorCode::Conflict
                                | ErrorCode::NotFound
                                | ErrorCode::Forbidden
                                | ErrorCode::Unauthenticated
                        )
                    );
                    if !retry {
                        reload.update(|v| *v += 1);
                    }
                    Err(Failure { error, retry })
                }
            }
        }
    });

    // A finished upload empties the form for the next build.
    Effect::new(move |_| {
        if let Some(Ok(_)) = run.value().get() {
            version.set(String::new());
            notes.set(String::new());
            chosen.set(None);
            file.set_value(None);
            if let Some(input) = file_input.get() {
                input.set_value("");
            }
        }
    });

    let product = product_id.clone();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let label = version.get_untracked().trim().to_owned();
        let platform_slug = Some(platform.get_untracked())
            .filter(|p| !p.is_empty())
            .or_else(|| platforms.get_untracked().first().cloned())
            .unwrap_or_default();
        let picked = file.get_value();
        let problem = if platform_slug.is_empty() {
            Some((
                "platform",
                "Add a platform to the product first.".to_owned(),
            ))
        } else if label.is_empty() {
            Some(("version", "Enter a version label, like 1.0.0.".to_owned()))
        } else if picked.is_none() {
            Some(("file", "Choose the file to upload.".to_owned()))
        } else {
            None
        };
        let fine = problem.is_none();
        invalid.set(problem);
        let Some(picked) = picked.filter(|_| fine) else {
            focus_first_invalid();
            return;
        };
        current.set_value(None);
        run.dispatch(SendWrapper::new(Step::Create(
            create_build::CreateBuildInput {
                product_id: product.clone(),
                platform: platform_slug,
                version_label: label,
                release_notes: notes.get_untracked(),
                file_name: safe_file_name(&picked.name()),
                size_bytes: picked.size() as i64,
            },
        )));
    };

    // A refused field (ours or the API's `extensions.field`) is marked on its input.
    let field_error = move |name: &'static str| {
        invalid
            .get()
            .filter(|(field, _)| *field == name)
            .map(|(_, message)| message)
            .or_else(|| {
                run.value().get().and_then(Result::err).and_then(|failure| {
                    let field = failure.error.field.as_deref()?;
                    let mine = match field {
                        "versionLabel" => "version",
                        "fileName" | "sizeBytes" => "file",
                        "platform" => "platform",
                        "releaseNotes" => "notes",
                        _ => return None,
                    };
                    (mine == name).then(|| failure.error.message.clone())
                })
            })
            .or_else(|| {
                // A taken version label is the version field's fault.
                (name == "version")
                    .then(|| run.value().get())
                    .flatten()
                    .and_then(Result::err)
                    .filter(|f| {
                        !f.retry
                            && f.error.code == Some(ErrorCode::Conflict)
                            && f.error.field.is_none()
                    })
                    .filter(|_| current.get_value().is_none())
                    .map(|_| "This version label is taken for this platform.".to_owned())
            })
    };
    Effect::new(move |_| {
        if run.value().get().is_some_and(|r| r.is_err()) {
            focus_first_invalid();
        }
    });

    let id = move |suffix: &str| format!("{ids}-{suffix}");
    let busy = move || run.pending().get();
    view! {
        <form class="form form--card build-form" novalidate=true aria-labelledby=id("title") on:submit=on_submit>
            <h4 id=id("title")>"New build"</h4>
            <div class="field">
                <label for=id("platform")>"Platform"</label>
                <select
                    id=id("platform")
                    aria-invalid=move || field_error("platform").is_some().to_string()
                    on:change=move |ev| platform.set(event_target_value(&ev))
                >
                    {move || platforms.get().into_iter().map(|slug| {
                        let label = platform_label(&slug);
                        let chosen = platform.get_untracked() == slug;
                        view! { <option value=slug selected=chosen>{label}</option> }
                    }).collect_view()}
                </select>
                {move || field_error("platform").map(|m| view! { <p class="field__error">{m}</p> })}
            </div>
            <div class="field">
                <label for=id("version")>"Version label"</label>
                <input
                    id=id("version")
                    type="text"
                    required=true
                    autocomplete="off"
                    placeholder="1.0.0"
                    aria-invalid=move || field_error("version").is_some().to_string()
                    aria-describedby=id("version-error")
                    prop:value=version
                    on:input=move |ev| version.set(event_target_value(&ev))
                />
                <p class="field__error" id=id("version-error")>{move || field_error("version")}</p>
            </div>
            <div class="field">
                <label for=id("notes")>"Release notes (Markdown, optional)"</label>
                <textarea
                    id=id("notes")
                    rows="3"
                    aria-invalid=move || field_error("notes").is_some().to_string()
                    prop:value=notes
                    on:input=move |ev| notes.set(event_target_value(&ev))
                ></textarea>
                {move || field_error("notes").map(|m| view! { <p class="field__error">{m}</p> })}
            </div>
            <div class="field">
                <label for=id("file")>"File"</label>
                <input
                    id=id("file")
                    type="file"
                    node_ref=file_input
                    required=true
                    aria-invalid=move || field_error("file").is_some().to_string()
                    aria-describedby=id("file-hint")
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        let picked = input.files().and_then(|files| files.get(0));
                        chosen.set(picked.as_ref().map(|f| (f.name(), f.size() as i64)));
                        file.set_value(picked);
                    }
                />
                <p class="field__hint" id=id("file-hint")>
                    {move || match chosen.get() {
                        Some((name, size)) => format!("{name}, {}", human_size(size)),
                        None => "The installer or archive owners download.".to_owned(),
                    }}
                </p>
                {move || field_error("file").map(|m| view! { <p class="field__error">{m}</p> })}
            </div>
            <Progress sent label="Upload progress" />
            <div aria-live="polite">
                {move || run.value().get().map(|result| match result {
                    Ok(build) => view! { <Uploaded stored=build make_current /> }.into_any(),
                    Err(failure) => {
                        let known = if current.get_value().is_some() { upload_known } else { create_known };
                        view! {
                            {error_alert(&failure.error, known)}
                            {failure.retry.then(|| view! {
                                <button
                                    class="button"
                                    type="button"
                                    disabled=busy
                                    on:click=move |_| { run.dispatch(SendWrapper::new(Step::Retry)); }
                                >
                                    "Retry"
                                </button>
                            })}
                        }.into_any()
                    }
                })}
            </div>
            <button class="button button--primary" type="submit" disabled=busy>
                {move || if busy() { "Uploading…" } else { "Upload build" }}
            </button>
        </form>
    }
}

/// After a successful upload: what was stored, and the way to make it current.
#[component]
fn Uploaded(
    stored: UploadedBuild,
    make_current: Action<String, Result<(), ApiError>>,
) -> impl IntoView {
    let build = stored;
    let id = build.id.clone();
    let done = RwSignal::new(false);
    let sha = build.sha256.unwrap_or_default();
    view! {
        <div class="alert alert--ok" role="status">
            <p>
                {format!("Uploaded ({}, SHA-256 ", human_size(build.size_bytes))}
                <code class="sha" title=sha.clone()>{short_sha(&sha)}</code>
                {if build.status == "READY" { "). Make it current so owners get it." } else { ")." }}
            </p>
            <Show when=move || !done.get()>
                <button
                    class="button"
                    type="button"
                    disabled=move || make_current.pending().get()
                    on:click={
                        let id = id.clone();
                        move |_| {
                            done.set(true);
                            make_current.dispatch(id.clone());
                        }
                    }
                >
                    "Make current"
                </button>
            </Show>
        </div>
    }
}
