//! Small pieces shared by the pages.

use leptos::leptos_dom::helpers::{TimeoutHandle, set_timeout_with_handle};
use leptos::prelude::*;
use leptos_router::components::A;
use wasm_bindgen::JsCast;

use crate::page::{Bundle, Page};

/// The bundle this page runs in (`app.rs` provides it).
pub fn use_bundle() -> Bundle {
    use_context::<Bundle>().unwrap_or(Bundle::Store)
}

/// A link to one of the app's pages: through the router within this bundle, a full page load
/// (`rel="external"`, which the router leaves to the browser) to another bundle's pages, rather
/// than a round through the router's fallback.
#[component]
pub fn PageLink(
    page: Page,
    #[prop(optional)] exact: bool,
    #[prop(optional)] class: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    let href = page.href();
    let external = (Bundle::of_path(&href) != use_bundle()).then_some("external");
    view! {
        <A href=href exact=exact attr:class=class attr:rel=external>
            {children()}
        </A>
    }
}

/// A polite loading line for `Transition`/`Suspense` fallbacks.
#[component]
pub fn Loading(#[prop(optional, into)] label: Option<String>) -> impl IntoView {
    view! {
        <p class="state state--loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            {label.unwrap_or_else(|| "Loading…".to_owned())}
        </p>
    }
}

/// The fallback of an `ErrorBoundary`: every error, in an alert.
pub fn error_fallback(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div class="alert alert--error" role="alert">
            <p>"Something went wrong."</p>
            <ul>
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|(_, error)| view! { <li>{error.to_string()}</li> })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

/// An empty state: nothing to show, and what to do about it.
#[component]
pub fn Empty(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <div class="state state--empty">
            <p class="state__title">{title}</p>
            {children()}
        </div>
    }
}

/// A star rating out of five, readable by screen readers.
#[component]
pub fn Stars(
    average: Option<f64>,
    count: i64,
    /// Leave out the number of reviews (one review's own rating).
    #[prop(optional)]
    bare: bool,
) -> impl IntoView {
    match average {
        Some(average) => {
            let rounded = average.round().clamp(0.0, 5.0) as usize;
            let stars = format!("{}{}", "★".repeat(rounded), "☆".repeat(5 - rounded));
            let average = one_decimal(average);
            view! {
                <span class="stars" title=format!("{average} out of 5")>
                    <span aria-hidden="true">{stars}</span>
                    <span class="visually-hidden">{format!("Rated {average} out of 5")}</span>
                    {(!bare).then(|| view! { " " <span class="stars__count">{format!("({count})")}</span> })}
                </span>
            }
            .into_any()
        }
        None => view! { <span class="stars stars--none">"No reviews yet"</span> }.into_any(),
    }
}

/// A rating with one decimal (`4.25` → `4.3`), without the float formatting of `{:.1}` (its code
/// weighs some 10 KB of wasm).
fn one_decimal(value: f64) -> String {
    let tenths = (value.clamp(0.0, 5.0) * 10.0).round() as u32;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// "2026-11-24T21:38:16Z" → "2026-11-24 21:38".
pub fn short_time(rfc3339: &str) -> String {
    let date = rfc3339.get(..10).unwrap_or(rfc3339);
    let time = rfc3339.get(11..16).unwrap_or("");
    format!("{date} {time}").trim().to_owned()
}

/// How long until a sale ends, in words ("Sale ends in 3 days"), from its RFC 3339 end.
pub fn sale_ends(rfc3339: &str) -> String {
    let left_ms = js_sys::Date::parse(rfc3339) - js_sys::Date::now();
    if !left_ms.is_finite() || left_ms <= 0.0 {
        return "Sale ended".to_owned();
    }
    let minutes = (left_ms / 60_000.0).ceil() as u64;
    let hours = minutes.div_ceil(60);
    let days = minutes / (24 * 60);
    match () {
        () if minutes < 60 => format!("Sale ends in {minutes} min"),
        () if hours < 48 => format!("Sale ends in {hours} hours"),
        () => format!("Sale ends in {days} days"),
    }
}

/// A price on sale: the list price struck through, the price now and the percentage off.
#[component]
pub fn SalePrice(
    #[prop(into)] now: String,
    #[prop(into)] list: String,
    percent: i64,
    #[prop(optional, into)] prefix: Option<&'static str>,
) -> impl IntoView {
    view! {
        <span class="sale-price">
            <span class="sale-price__badge">{format!("−{percent}%")}</span>
            " "
            <s class="sale-price__list">
                <span class="visually-hidden">"Was "</span>
                {list}
            </s>
            " "
            <strong class="sale-price__now">
                <span class="visually-hidden">"now "</span>
                {prefix.map(|p| format!("{p} "))}
                {now}
            </strong>
        </span>
    }
}

/// A stand-in for a missing cover: the title's first letter.
#[component]
pub fn CoverPlaceholder(title: String) -> impl IntoView {
    let initial = title
        .chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    view! {
        <span class="cover-placeholder" aria-hidden="true">
            {initial}
        </span>
    }
}

/// The Markdown the catalog stores, in the small subset its texts use: paragraphs, `- ` lists and
/// `**bold**`. Everything is rendered as text (no HTML passes through).
#[component]
pub fn Markdown(text: String) -> impl IntoView {
    let blocks = text
        .split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|block| {
            let lines: Vec<&str> = block.lines().map(str::trim).collect();
            if lines.iter().all(|l| l.starts_with("- ") || l.starts_with("* ")) {
                view! {
                    <ul>
                        {lines.into_iter().map(|l| view! { <li>{inline(&l[2..])}</li> }).collect_view()}
                    </ul>
                }
                .into_any()
            } else {
                view! { <p>{inline(&lines.join(" "))}</p> }.into_any()
            }
        })
        .collect_view();
    view! { <div class="markdown">{blocks}</div> }
}

/// `**bold**` spans of one line.
fn inline(text: &str) -> impl IntoView + use<> {
    text.split("**")
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                view! { <strong>{part.to_owned()}</strong> }.into_any()
            } else {
                part.to_owned().into_any()
            }
        })
        .collect_view()
}

/// Moves the keyboard focus to the first field marked invalid, once the errors are rendered.
pub fn focus_first_invalid() {
    request_animation_frame(|| {
        let field = document()
            .query_selector("[aria-invalid=\"true\"]")
            .ok()
            .flatten()
            .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(field) = field {
            let _ = field.focus();
        }
    });
}

/// Shows `children` to the signed-in, a sign-in prompt (coming back here after) to visitors.
#[component]
pub fn SignedIn(children: ChildrenFn) -> impl IntoView {
    let auth = crate::state::use_auth();
    // A memo: refreshing the session sets the account again, which must not rebuild the page.
    let signed_in = Memo::new(move |_| auth.signed_in());
    let location = leptos_router::hooks::use_location();
    move || {
        if signed_in.get() {
            children().into_any()
        } else if auth.restoring.get() {
            view! { <Loading /> }.into_any()
        } else {
            let here = location.pathname.get_untracked();
            let href = format!(
                "{}?next={}",
                Page::SignIn.href(),
                js_sys::encode_uri_component(&here)
            );
            view! {
                <div class="state">
                    <p class="state__title">"Please sign in"</p>
                    <p>"This page is about your account."</p>
                    <p>
                        <a class="button button--primary" href=href>
                            "Sign in"
                        </a>
                    </p>
                </div>
            }
            .into_any()
        }
    }
}

/// Field errors of a form: (field, message).
pub type FieldErrors = Vec<(&'static str, String)>;

/// Moves an API error onto its field (`extensions.field`), or returns it for the form-wide
/// alert.
pub fn place_error(
    error: &crate::api::ApiError,
    fields: RwSignal<FieldErrors>,
    fields_known: &[&'static str],
) -> Option<String> {
    match error
        .field
        .as_deref()
        .and_then(|f| fields_known.iter().find(|k| **k == f))
    {
        Some(field) => {
            fields.set(vec![(*field, error.message.clone())]);
            focus_first_invalid();
            None
        }
        None => Some(error.message.clone()),
    }
}

/// A labelled input with its hint and error message, wired for screen readers. `field` names
/// the input in the form's errors (the API's `extensions.field`); it defaults to `id`.
#[component]
pub fn Field(
    id: &'static str,
    label: &'static str,
    #[prop(optional)] field: Option<&'static str>,
    #[prop(default = "text")] kind: &'static str,
    autocomplete: &'static str,
    value: RwSignal<String>,
    errors: RwSignal<FieldErrors>,
    #[prop(optional_no_strip)] hint: Option<String>,
    #[prop(default = true)] required: bool,
    #[prop(optional)] maxlength: Option<u32>,
) -> impl IntoView {
    let field = field.unwrap_or(id);
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let error = move || {
        errors.with(|errors| {
            errors
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, m)| m.clone())
        })
    };
    let has_error = move || errors.with(|e| e.iter().any(|(f, _)| *f == field));
    let described_by = {
        let (error_id, hint_id) = (error_id.clone(), hint_id.clone());
        let has_hint = hint.is_some();
        move || {
            let mut ids = Vec::new();
            if has_hint {
                ids.push(hint_id.clone());
            }
            if has_error() {
                ids.push(error_id.clone());
            }
            ids.join(" ")
        }
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                name=field
                type=kind
                autocomplete=autocomplete
                required=required
                maxlength=maxlength
                aria-invalid=move || has_error().to_string()
                aria-describedby=described_by
                prop:value=value
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            {hint.map(|hint| view! { <p class="field__hint" id=hint_id>{hint}</p> })}
            {move || error().map(|message| view! { <p class="field__error" id=error_id.clone()>{message}</p> })}
        </div>
    }
}

/// Whether the component that made it is still mounted.
///
/// Work a page starts goes on after the router unmounted the page: a resource's request and what
/// its future does with the answer, an action's future (Leptos 0.8 cancels neither), and the
/// continuation tachys spawns for a `Suspend` that waits for a resource. What such work does
/// once it is back must not read the page's signals, stored values or actions, which are disposed
/// by then (`get`, `with`, `get_value`, `with_value`, `Action::value` panic: "Tried to access a
/// reactive value that has already been disposed", and the wasm dies), nor set the title of the
/// page now shown. Writes are safe (`set`, `update`, `set_value` do nothing once disposed);
/// reads after an `.await` use `try_…` (or are made before it), and a page's `Suspend` awaits its
/// data through [`Mounted::data`], which builds no view for a page that is gone.
#[derive(Clone, Copy)]
pub struct Mounted(StoredValue<()>);

impl Mounted {
    /// Made in the component's body: it lives as long as the component's view.
    pub fn new() -> Mounted {
        Mounted(StoredValue::new(()))
    }

    /// True until the component is unmounted.
    pub fn get(self) -> bool {
        !self.0.is_disposed()
    }

    /// Awaits `data` for the component's view: its value while the component is mounted, and
    /// never once it is gone (the future stays pending, and its task is dropped with the last
    /// waker, which nothing holds), so that no view is built for a page nobody sees.
    pub async fn data<T>(self, data: impl IntoFuture<Output = T>) -> T {
        let value = data.await;
        if self.get() {
            value
        } else {
            std::future::pending().await
        }
    }
}

/// Waits `duration` (a timer, not a busy loop).
pub async fn sleep(duration: std::time::Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    set_timeout(
        move || {
            let _ = tx.send(());
        },
        duration,
    );
    let _ = rx.await;
}

/// Copies `text` with `navigator.clipboard.writeText`; false when the browser refuses.
pub async fn copy_to_clipboard(text: String) -> bool {
    let navigator = window().navigator();
    let Ok(clipboard) =
        js_sys::Reflect::get(&navigator, &wasm_bindgen::JsValue::from_str("clipboard"))
    else {
        return false;
    };
    let Ok(write) = js_sys::Reflect::get(&clipboard, &wasm_bindgen::JsValue::from_str("writeText"))
    else {
        return false;
    };
    let Ok(write) = write.dyn_into::<js_sys::Function>() else {
        return false;
    };
    match write
        .call1(&clipboard, &wasm_bindgen::JsValue::from_str(&text))
        .map(js_sys::Promise::from)
    {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.is_ok(),
        Err(_) => false,
    }
}

/// How long after the last keystroke a search-as-you-type asks the API.
pub const TYPING_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs the last of a burst of calls once the typing pauses ([`TYPING_PAUSE`]); each call
/// cancels the one waiting before it. `Copy`, so closures of a view can share one.
#[derive(Clone, Copy)]
pub struct Debounce(StoredValue<Option<TimeoutHandle>>);

impl Debounce {
    /// What is still waiting when the component goes is cancelled with it.
    pub fn new() -> Debounce {
        let debounce = Debounce(StoredValue::new(None));
        on_cleanup(move || debounce.cancel());
        debounce
    }

    /// Cancels what is waiting and runs `f` after the pause.
    pub fn run(self, f: impl FnOnce() + 'static) {
        self.cancel();
        self.0
            .set_value(set_timeout_with_handle(f, TYPING_PAUSE).ok());
    }

    /// Cancels what is waiting, if anything.
    pub fn cancel(self) {
        if let Some(handle) = self.0.try_get_value().flatten() {
            handle.clear();
        }
        self.0.set_value(None);
    }
}

#[cfg(test)]
mod tests {
    use super::one_decimal;

    #[test]
    fn ratings_read_with_one_decimal() {
        assert_eq!(one_decimal(4.25), "4.3");
        assert_eq!(one_decimal(4.0), "4.0");
        assert_eq!(one_decimal(3.04), "3.0");
        assert_eq!(one_decimal(5.0), "5.0");
    }
}
