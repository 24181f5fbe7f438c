//! Alerts shared by the delivery, refund, revenue and admin-order pages: an API error in words
//! that fit the page, with its `extensions.code` kept visible (for support and for tests).

use domain::ErrorCode;
use leptos::prelude::*;

use crate::api::ApiError;

/// What a page says for the codes it expects (`None`: the general text).
pub type Known = fn(ErrorCode) -> Option<&'static str>;

/// No page-specific texts.
pub fn general(_: ErrorCode) -> Option<&'static str> {
    None
}

/// The sentence for `error`: the page's own text for its expected codes, else a general one
/// followed by the API's message.
pub fn explain(error: &ApiError, known: Known) -> String {
    let Some(code) = error.code else {
        // No code: the network or an unexpected answer; the message says which.
        return error.message.clone();
    };
    if let Some(text) = known(code) {
        return text.to_owned();
    }
    let lead = match code {
        ErrorCode::Unauthenticated => return "Please sign in again.".to_owned(),
        ErrorCode::Forbidden => "Your account may not do this",
        ErrorCode::NotFound => "Not found",
        ErrorCode::Conflict => "That conflicts with the current state",
        ErrorCode::BadUserInput => "Please check the form",
        ErrorCode::RateLimited => "Too many requests; wait a moment",
        ErrorCode::InternalServerError => {
            return "The store had a problem on its side. Try again in a moment.".to_owned();
        }
        _ => "The request failed",
    };
    format!("{lead}: {}", sentence(&error.message))
}

/// "first must be …" → "First must be ….".
fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// An error alert: the explanation and the code (`data-code` too).
pub fn error_alert(error: &ApiError, known: Known) -> impl IntoView + use<> {
    let code = error.code.map(ErrorCode::as_str).unwrap_or("NETWORK");
    view! {
        <p class="alert alert--error" role="alert" data-code=code>
            {explain(error, known)}
            " "
            <code class="error-code">{code}</code>
        </p>
    }
}

/// An error alert with a "Try again" button that bumps `reload` (a failed load).
pub fn load_error(error: &ApiError, reload: RwSignal<u32>) -> impl IntoView + use<> {
    view! {
        <div class="load-error">
            {error_alert(error, general)}
            <button class="button" type="button" on:click=move |_| reload.update(|v| *v += 1)>
                "Try again"
            </button>
        </div>
    }
}

/// A success line, announced politely.
pub fn ok_status(text: String) -> impl IntoView {
    view! {
        <p class="alert alert--ok" role="status">
            {text}
        </p>
    }
}

/// Bytes for people: `1536` → `1.5 KB`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The first 12 hex digits of a SHA-256, for display (the full one goes in a `title`).
pub fn short_sha(sha256: &str) -> String {
    match sha256.get(..12) {
        Some(head) if sha256.len() > 12 => format!("{head}…"),
        _ => sha256.to_owned(),
    }
}

/// The display name of a platform slug (`linux` → `Linux`).
pub fn platform_label(slug: &str) -> String {
    domain::catalog::PLATFORMS
        .iter()
        .find(|(s, _)| *s == slug)
        .map(|(_, label)| (*label).to_owned())
        .unwrap_or_else(|| slug.to_owned())
}
