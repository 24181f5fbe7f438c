//! Publisher: their bundles (status, price against the parts' total, publish and archive) and
//! a form to make one from the editions of their published products.

use leptos::prelude::*;

use crate::api::queries::{
    ArchiveBundle, CreateBundle, MyBundles, MyProducts, PublishBundle, archive_bundle,
    create_bundle, my_bundles, my_products, publish_bundle,
};
use crate::api::session::enum_name;
use crate::api::{self, ApiError};
use crate::components::{Empty, Loading, Mounted, PageLink, error_fallback};
use crate::page::Page;

/// An edition that may go into a bundle: (edition id, "Product — Edition · price").
type Choice = (String, String);

#[component]
pub fn Bundles() -> impl IntoView {
    let mounted = Mounted::new();
    let version = RwSignal::new(0_u32);
    let bundles = LocalResource::new(move || {
        version.track();
        async move {
            api::request::<MyBundles>(my_bundles::Variables {})
                .await
                .map(|d| d.my_bundles)
        }
    });
    let change = Action::new_local(move |(id, publish): &(String, bool)| {
        let (id, publish) = (id.clone(), *publish);
        async move {
            let result = if publish {
                api::request::<PublishBundle>(publish_bundle::Variables { id })
                    .await
                    .map(|_| ())
            } else {
                api::request::<ArchiveBundle>(archive_bundle::Variables { id })
                    .await
                    .map(|_| ())
            };
            version.update(|v| *v += 1);
            result
        }
    });
    view! {
        <section aria-labelledby="bundles-title">
            <h2 id="bundles-title">"Your bundles"</h2>
            {move || change.value().get().and_then(Result::err).map(|e: ApiError| view! {
                <p class="alert alert--error" role="alert">{e.message}</p>
            })}
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(bundles).await.map(|list| {
                            if list.is_empty() {
                                return view! { <Empty title="No bundles yet"><p>"Group two or more of your editions below."</p></Empty> }.into_any();
                            }
                            view! {
                                <ul class="list" aria-label="Bundles">
                                    {list.into_iter().map(|b| {
                                        let status = enum_name(&b.status);
                                        let (id, id2) = (b.id.clone(), b.id.clone());
                                        let draft = status == "DRAFT";
                                        let published = status == "PUBLISHED";
                                        view! {
                                            <li class="list__item">
                                                <p>
                                                    <PageLink page=Page::Bundle(b.slug.clone())>{b.title.clone()}</PageLink>
                                                    " · " {status.to_lowercase()}
                                                    " · " {format!("{} editions, {} instead of {}", b.item_count, b.price.formatted, b.list_total.formatted)}
                                                </p>
                                                {draft.then(|| view! {
                                                    <button class="button" type="button" on:click=move |_| { change.dispatch((id.clone(), true)); }>"Publish bundle"</button>
                                                })}
                                                {published.then(|| view! {
                                                    <button class="button button--ghost" type="button" on:click=move |_| { change.dispatch((id2.clone(), false)); }>"Archive bundle"</button>
                                                })}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
            <NewBundle version />
        </section>
    }
}

/// The form of a new bundle: a title, a price, and two or more of the publisher's published
/// editions. It is created as a draft; "Publish bundle" in the list puts it on sale.
#[component]
fn NewBundle(version: RwSignal<u32>) -> impl IntoView {
    let mounted = Mounted::new();
    let choices = LocalResource::new(move || async move {
        api::request::<MyProducts>(my_products::Variables {
            first: 100,
            after: None,
            search: None,
        })
        .await
        .map(|d| {
            d.my_products
                .nodes
                .into_iter()
                .filter(|p| enum_name(&p.status) == "PUBLISHED")
                .flat_map(|p| {
                    let title = p.title.clone();
                    p.editions.into_iter().map(move |e| {
                        (
                            e.id,
                            format!("{title} — {} · {}", e.name, e.price.formatted),
                        )
                    })
                })
                .collect::<Vec<Choice>>()
        })
    });
    let title = RwSignal::new(String::new());
    let price = RwSignal::new(String::new());
    let picked = RwSignal::new(Vec::<String>::new());
    let create = Action::new_local(move |input: &create_bundle::CreateBundleInput| {
        let input = input.clone();
        async move {
            let result = api::request::<CreateBundle>(create_bundle::Variables { input })
                .await
                .map(|_| ());
            if result.is_ok() {
                title.set(String::new());
                price.set(String::new());
                picked.set(Vec::new());
                version.update(|v| *v += 1);
            }
            result
        }
    });
    let local_error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(price_minor) =
            domain::money::parse_amount(&price.get_untracked(), domain::money::Currency::EUR)
        else {
            local_error.set(Some("The price is an amount like 24.99.".to_owned()));
            return;
        };
        let edition_ids = picked.get_untracked();
        if edition_ids.len() < 2 {
            local_error.set(Some("Pick two editions or more.".to_owned()));
            return;
        }
        local_error.set(None);
        create.dispatch(create_bundle::CreateBundleInput {
            title: title.get_untracked(),
            slug: None,
            description: String::new(),
            price_minor,
            edition_ids,
        });
    };
    view! {
        <form class="form form--card" aria-labelledby="new-bundle-title" on:submit=submit>
            <h3 id="new-bundle-title">"New bundle"</h3>
            <div class="field">
                <label for="b-title">"Bundle title"</label>
                <input id="b-title" required prop:value=title on:input=move |ev| title.set(event_target_value(&ev)) />
            </div>
            <div class="field">
                <label for="b-price">"Bundle price"</label>
                <input id="b-price" inputmode="decimal" required prop:value=price on:input=move |ev| price.set(event_target_value(&ev)) />
            </div>
            <fieldset class="field">
                <legend>"Editions in the bundle (less than they cost together)"</legend>
                <Transition fallback=|| view! { <Loading /> }>
                    <ErrorBoundary fallback=error_fallback>
                        {move || Suspend::new(async move {
                            mounted.data(choices).await.map(|list| {
                                list.into_iter().map(|(id, label)| {
                                    let (id2, id3) = (id.clone(), id.clone());
                                    view! {
                                        <label class="chip">
                                            <input
                                                type="checkbox"
                                                prop:checked=move || picked.with(|p| p.contains(&id2))
                                                on:change=move |ev| {
                                                    let on = event_target_checked(&ev);
                                                    picked.update(|p| {
                                                        p.retain(|x| *x != id3);
                                                        if on {
                                                            p.push(id3.clone());
                                                        }
                                                    });
                                                }
                                            />
                                            {label}
                                        </label>
                                    }
                                }).collect_view()
                            })
                        })}
                    </ErrorBoundary>
                </Transition>
            </fieldset>
            {move || local_error.get().map(|e| view! { <p class="alert alert--error" role="alert">{e}</p> })}
            {move || create.value().get().map(|r| match r {
                Ok(()) => view! { <p class="alert alert--ok" role="status">"Bundle created as a draft."</p> }.into_any(),
                Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
            })}
            <button class="button button--primary" type="submit" disabled=move || create.pending().get()>"Create bundle"</button>
        </form>
    }
}
