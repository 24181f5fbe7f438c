//! Sign in and sign up: labelled fields, the domain's validation before sending, and the API's
//! errors shown next to the field they are about (`extensions.field`).

use domain::identity::{DisplayName, Email, MIN_PASSWORD_LEN, Password};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::queries::{SignIn as SignInOp, SignUp as SignUpOp, sign_in, sign_up};
use crate::api::request_anonymous;
use crate::api::session::{self, Account, NewSession, enum_name};
use crate::components::{Field, FieldErrors, focus_first_invalid, place_error};
use crate::page::Page;

/// Where to go after signing in: `?next=/path` (same origin only) or the store.
fn next_page() -> impl Fn() -> String {
    let query = use_query_map();
    move || {
        query
            .with_untracked(|q| q.get("next"))
            .filter(|next| next.starts_with('/') && !next.starts_with("//"))
            .unwrap_or_else(|| Page::Store.href())
    }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let fields = RwSignal::new(FieldErrors::new());
    let alert = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let next = next_page();

    let submit = Action::new_local(move |input: &(String, String)| {
        let (email, password) = input.clone();
        let navigate = navigate.clone();
        let next = next();
        async move {
            let input = sign_in::SignInInput { email, password };
            match request_anonymous::<SignInOp>(sign_in::Variables { input }).await {
                Ok(data) => {
                    let p = data.sign_in;
                    session::start(NewSession {
                        access_token: p.access_token,
                        refresh_token: p.refresh_token,
                        account: Account {
                            id: p.account.id,
                            email: p.account.email,
                            display_name: p.account.display_name,
                            role: enum_name(&p.account.role),
                        },
                    });
                    navigate(&next, Default::default());
                }
                Err(error) => alert.set(place_error(&error, fields, &["email", "password"])),
            }
        }
    });

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        alert.set(None);
        let mut errors = FieldErrors::new();
        let email = email.get_untracked();
        if let Err(e) = Email::parse(&email) {
            errors.push(("email", e.to_string()));
        }
        let password = password.get_untracked();
        if password.is_empty() {
            errors.push(("password", "enter your password".to_owned()));
        }
        let ok = errors.is_empty();
        fields.set(errors);
        if !ok {
            focus_first_invalid();
        }
        if ok {
            submit.dispatch((email.trim().to_owned(), password));
        }
    };

    view! {
        <section class="page page--narrow" aria-labelledby="sign-in-title">
            <h1 id="sign-in-title">"Sign in"</h1>
            <form class="form" on:submit=on_submit novalidate=true>
                {move || alert.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
                <Field id="email" label="E-mail" kind="email" autocomplete="username" value=email errors=fields />
                <Field id="password" label="Password" kind="password" autocomplete="current-password" value=password errors=fields />
                <button class="button button--primary" type="submit" disabled=move || submit.pending().get()>
                    {move || if submit.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
            <p>"New here? " <A href=Page::SignUp.href()>"Create an account"</A></p>
        </section>
    }
}

#[component]
pub fn SignUp() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let fields = RwSignal::new(FieldErrors::new());
    let alert = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let next = next_page();

    let submit = Action::new_local(move |input: &sign_up::SignUpInput| {
        let input = input.clone();
        let navigate = navigate.clone();
        let next = next();
        async move {
            match request_anonymous::<SignUpOp>(sign_up::Variables { input }).await {
                Ok(data) => {
                    let p = data.sign_up;
                    session::start(NewSession {
                        access_token: p.access_token,
                        refresh_token: p.refresh_token,
                        account: Account {
                            id: p.account.id,
                            email: p.account.email,
                            display_name: p.account.display_name,
                            role: enum_name(&p.account.role),
                        },
                    });
                    navigate(&next, Default::default());
                }
                Err(error) => {
                    alert.set(place_error(
                        &error,
                        fields,
                        &["email", "password", "displayName"],
                    ));
                }
            }
        }
    });

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        alert.set(None);
        let mut errors = FieldErrors::new();
        let email = Email::parse(&email.get_untracked())
            .map_err(|e| errors.push(("email", e.to_string())))
            .ok();
        let display_name = DisplayName::parse(&name.get_untracked())
            .map_err(|e| errors.push(("displayName", e.to_string())))
            .ok();
        let password = Password::parse(&password.get_untracked())
            .map_err(|e| errors.push(("password", e.to_string())))
            .ok();
        if !errors.is_empty() {
            focus_first_invalid();
        }
        fields.set(errors);
        if let (Some(email), Some(display_name), Some(password)) = (email, display_name, password) {
            submit.dispatch(sign_up::SignUpInput {
                email: email.as_str().to_owned(),
                password: password.expose().to_owned(),
                display_name: display_name.as_str().to_owned(),
            });
        }
    };

    view! {
        <section class="page page--narrow" aria-labelledby="sign-up-title">
            <h1 id="sign-up-title">"Create an account"</h1>
            <form class="form" on:submit=on_submit novalidate=true>
                {move || alert.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
                <Field id="email" label="E-mail" kind="email" autocomplete="email" value=email errors=fields />
                <Field id="displayName" label="Name shown on your reviews" autocomplete="nickname" value=name errors=fields />
                <Field
                    id="password"
                    label="Password"
                    kind="password"
                    autocomplete="new-password"
                    value=password
                    errors=fields
                    hint=Some(format!("At least {MIN_PASSWORD_LEN} characters."))
                />
                <button class="button button--primary" type="submit" disabled=move || submit.pending().get()>
                    {move || if submit.pending().get() { "Creating…" } else { "Create account" }}
                </button>
            </form>
            <p>"Already have an account? " <A href=Page::SignIn.href()>"Sign in"</A></p>
        </section>
    }
}
