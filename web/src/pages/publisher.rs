//! Publisher: orders to ship (live), their products in every state (20 a page, searched by title
//! as they type) with an edit form each, a new product with its first edition, publishing, and
//! stock of physical editions (followed until fulfillment applied it).

use domain::catalog::{GENRES, PLATFORMS};
use leptos::prelude::*;
use leptos_router::components::A;
use send_wrapper::SendWrapper;

use crate::api::queries::{
    AddEdition, CreateProduct, Domain, MyProducts, PublishProduct, SetStock, StockCommand,
    UpdateEdition, UpdateProduct, add_edition, create_product, my_products, publish_product,
    set_stock, stock_command, update_edition, update_product,
};
use crate::api::queries::{
    EndDiscount, ScheduleDiscount, SetEditionPrices, end_discount, schedule_discount,
    set_edition_prices,
};
use crate::api::queries::{
    PendingShipments, SalesFeed, ShipOrder, ShipmentsUpdated, pending_shipments, sales_feed,
    ship_order, shipments_updated, upload_product_image,
};
use crate::api::session::enum_name;
use crate::api::upload::upload_product_image;
use crate::api::ws;
use crate::api::{self, ApiError};
use crate::components::{
    Debounce, Empty, FieldErrors, Loading, Mounted, error_fallback, focus_first_invalid, short_time,
};
use crate::page::Page;
use crate::words;

fn outcome(result: Option<Result<(), ApiError>>, ok: &'static str) -> impl IntoView + use<> {
    result.map(|r| match r {
        Ok(()) => view! { <p class="alert alert--ok" role="status">{ok}</p> }.into_any(),
        Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
    })
}

/// Products per page of the publisher's list.
const PRODUCTS_PAGE: i64 = 20;

type MyProduct = my_products::MyProductsMyProductsNodes;
type MyEdition = my_products::MyProductsMyProductsNodesEditions;

#[component]
pub fn Publisher() -> impl IntoView {
    let mounted = Mounted::new();
    let version = RwSignal::new(0_u32);
    // Bumped by each live sale: the revenue figures are fetched again.
    let sale_tick = RwSignal::new(0_u32);
    let search = RwSignal::new(String::new());
    // The cursors of the pages before the current one (paging forward pushes).
    let cursors = RwSignal::new(Vec::<Option<String>>::new());
    let after = RwSignal::new(None::<String>);
    // What is in the search box, and the search whose results are on screen: the list is busy
    // (`aria-busy`) until they agree.
    let typed = RwSignal::new(String::new());
    let shown = RwSignal::new(None::<String>);
    let products = LocalResource::new(move || {
        version.track();
        let raw = search.get();
        let query = Some(raw.trim().to_owned()).filter(|s| !s.is_empty());
        let after = after.get();
        async move {
            let page = api::request::<MyProducts>(my_products::Variables {
                first: PRODUCTS_PAGE,
                after,
                search: query,
            })
            .await
            .map(|data| data.my_products);
            // A late answer to an older search is not what is on screen.
            if search.try_get_untracked().as_ref() == Some(&raw) {
                shown.try_set(Some(raw));
            }
            page
        }
    });
    let busy = move || {
        let typed = typed.get();
        shown.with(|s| s.as_deref() != Some(typed.as_str()))
    };
    let debounce = Debounce::new();
    let on_input = move |ev: leptos::ev::Event| {
        let text = event_target_value(&ev);
        typed.set(text.clone());
        debounce.run(move || {
            cursors.try_set(Vec::new());
            after.try_set(None);
            search.try_set(text);
        });
    };
    let publish = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move {
            let result = api::request::<PublishProduct>(publish_product::Variables { id })
                .await
                .map(|_| ());
            version.update(|v| *v += 1);
            result
        }
    });
    view! {
        <section class="page" aria-labelledby="publisher-title">
            <h1 id="publisher-title">"Publisher"</h1>
            <PendingShipmentList />
            <crate::pages::revenue::Revenue sale_tick />
            <LiveSales sale_tick />
            <section aria-labelledby="products-title">
                <h2 id="products-title">"Your products"</h2>
                <div class="field" role="search">
                    <label for="product-search">"Search your products"</label>
                    <input id="product-search" type="search" autocomplete="off" on:input=on_input />
                </div>
                <div aria-live="polite">{move || outcome(publish.value().get(), "Published.")}</div>
                <div id="product-results" aria-busy=move || busy().to_string()>
                    <Transition fallback=|| view! { <Loading /> }>
                        <ErrorBoundary fallback=error_fallback>
                            {move || Suspend::new(async move {
                                mounted.data(products).await.map(|page| {
                                    let next = page.page_info.has_next_page.then_some(page.page_info.end_cursor).flatten();
                                    if page.nodes.is_empty() {
                                        let searching = !search.get_untracked().trim().is_empty();
                                        return if searching {
                                            view! {
                                                <Empty title="No product of yours has this in its title"><p>"Try a part of the title."</p></Empty>
                                                <crate::pages::refunds::Pager cursors after next />
                                            }.into_any()
                                        } else {
                                            view! { <Empty title="No products yet"><p>"Create your first one below."</p></Empty> }.into_any()
                                        };
                                    }
                                    view! {
                                        <ul class="list">
                                            {page.nodes.into_iter().map(|product| view! { <ProductItem product publish /> }).collect_view()}
                                        </ul>
                                        <crate::pages::refunds::Pager cursors after next />
                                    }.into_any()
                                })
                            })}
                        </ErrorBoundary>
                    </Transition>
                </div>
            </section>
            <NewProduct version />
            <crate::pages::publisher_bundles::Bundles />
            <crate::pages::giftkeys::GiftKeys />
            <crate::pages::webhooks::Webhooks />
            <crate::pages::clients::ApiClients />
        </section>
    }
}

/// An edition as the list shows it; the edit form changes its name and price in place.
#[derive(Clone, Copy)]
struct ShownEdition {
    name: RwSignal<String>,
    price: RwSignal<String>,
    amount_minor: RwSignal<i64>,
}

/// One product of the list: its status, cover, editions (with stock), builds, and its edit form.
#[component]
fn ProductItem(product: MyProduct, publish: Action<String, Result<(), ApiError>>) -> impl IntoView {
    let moderated = product.moderation_reason.is_some();
    let status = product.status.domain();
    let draft = status == Some(domain::catalog::ProductStatus::Draft);
    let status_text = format!(
        "{}{}",
        words::product_status(status, moderated),
        product
            .moderation_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let id = product.id.clone();
    let title = RwSignal::new(product.title.clone());
    let editions: Vec<(MyEdition, ShownEdition)> = product
        .editions
        .iter()
        .map(|e| {
            let shown = ShownEdition {
                name: RwSignal::new(e.name.clone()),
                price: RwSignal::new(e.price.formatted.clone()),
                amount_minor: RwSignal::new(e.price.amount_minor),
            };
            (e.clone(), shown)
        })
        .collect();
    let description = RwSignal::new(product.description);
    let genres = RwSignal::new(product.genres);
    let editing = RwSignal::new(false);
    let form_id = format!("edit-{id}");
    let publish_id = id.clone();
    let edit_id = id.clone();
    let href = Page::Product(product.slug).href();
    let status_code = enum_name(&product.status);
    let cover = product.cover.map(|c| c.url);
    view! {
        <li class="list__item publisher-product" data-product-id=id.clone()>
            <div>
                <h2 class="library__title"><A href=href>{move || title.get()}</A></h2>
                <p class="muted product-status" data-status=status_code>{status_text}</p>
                <CoverUpload product_id=id.clone() cover />
                <ul class="editions">
                    {editions.iter().map(|(e, shown)| view! { <EditionRow edition=e.clone() shown=*shown /> }).collect_view()}
                </ul>
                <crate::pages::builds::Builds product_id=id.clone() />
                <section class="product-edit">
                    <h3 class="builds__heading">
                        <button
                            type="button"
                            class="disclosure"
                            aria-expanded=move || editing.get().to_string()
                            aria-controls=form_id.clone()
                            on:click=move |_| editing.update(|o| *o = !*o)
                        >
                            "Edit"
                        </button>
                    </h3>
                    <div id=form_id.clone() hidden=move || !editing.get()>
                        <Show when=move || editing.get()>
                            <EditProduct product_id=edit_id.clone() title description genres editions=editions.clone() />
                        </Show>
                    </div>
                </section>
            </div>
            {draft.then(|| view! {
                <button class="button button--primary" type="button" on:click=move |_| { publish.dispatch(publish_id.clone()); }>"Publish"</button>
            })}
        </li>
    }
}

/// "1999" minor units → "19.99", as the price field shows it.
fn price_text(minor: i64) -> String {
    plain_amount(minor, domain::money::Currency::EUR)
}

/// Errors of the edit form, by the key of their field: `title`, `description`, `genres`, and
/// `<edition id>:name` / `<edition id>:price` for the editions.
type EditErrors = Vec<(String, String)>;

/// The edit form of a product: title, description, genres, and each edition's name and price.
/// Each value is checked with the catalog's rules before anything is sent; an error the api
/// answers lands on its field. "Saved." stays until the form is sent again.
#[component]
fn EditProduct(
    product_id: String,
    /// The title the list shows (changed once saved).
    title: RwSignal<String>,
    /// Edited in place: kept when the form is closed and opened again.
    description: RwSignal<String>,
    genres: RwSignal<Vec<String>>,
    editions: Vec<(MyEdition, ShownEdition)>,
) -> impl IntoView {
    let id = product_id.clone();
    let title_value = RwSignal::new(title.get_untracked());
    let fields: Vec<(String, ShownEdition, RwSignal<String>, RwSignal<String>)> = editions
        .iter()
        .map(|(e, shown)| {
            (
                e.id.clone(),
                *shown,
                RwSignal::new(shown.name.get_untracked()),
                RwSignal::new(price_text(shown.amount_minor.get_untracked())),
            )
        })
        .collect();
    let errors = RwSignal::new(EditErrors::new());
    let alert = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let fields_for_save = fields.clone();
    let save =
        Action::new_local(move |(): &()| {
            let id = id.clone();
            // The editions' changes, read now: the form may be closed (its fields disposed)
            // before the product's answer comes.
            let changes: Vec<_> = fields_for_save
                .iter()
                .filter_map(|(edition_id, shown, name, price)| {
                    let new_name = name.get_untracked().trim().to_owned();
                    let new_price = domain::money::parse_price(
                        &price.get_untracked(),
                        domain::money::Currency::EUR,
                    );
                    let name_changed = new_name != shown.name.get_untracked();
                    let price_changed = new_price != Some(shown.amount_minor.get_untracked());
                    if !name_changed && !price_changed {
                        return None;
                    }
                    let input = update_edition::UpdateEditionInput {
                        name: name_changed.then_some(new_name),
                        sku: None,
                        price: new_price.filter(|_| price_changed).map(|amount_minor| {
                            update_edition::MoneyInput {
                                amount_minor,
                                currency: "EUR".to_owned(),
                            }
                        }),
                        weight_grams: None,
                    };
                    Some((edition_id.clone(), *shown, *price, input))
                })
                .collect();
            let input = update_product::UpdateProductInput {
                title: Some(title_value.get_untracked().trim().to_owned()),
                slug: None,
                description: Some(description.get_untracked()),
                genres: Some(genres.get_untracked()),
                platforms: None,
                tags: None,
                release_date: None,
                age_rating: None,
                system_requirements: None,
            };
            async move {
                let updated =
                    match api::request::<UpdateProduct>(update_product::Variables { id, input })
                        .await
                    {
                        Ok(data) => data.update_product,
                        Err(e) => return Err((None, e)),
                    };
                title.try_set(updated.title.clone());
                title_value.try_set(updated.title);
                description.try_set(updated.description);
                genres.try_set(updated.genres);
                for (edition_id, shown, price, input) in changes {
                    match api::request::<UpdateEdition>(update_edition::Variables {
                        id: edition_id.clone(),
                        input,
                    })
                    .await
                    {
                        Ok(data) => {
                            let e = data.update_edition;
                            shown.name.try_set(e.name);
                            shown.price.try_set(e.price.formatted);
                            shown.amount_minor.try_set(e.price.amount_minor);
                            price.try_set(price_text(e.price.amount_minor));
                        }
                        Err(e) => return Err((Some(edition_id), e)),
                    }
                }
                Ok(())
            }
        });
    // The answer of the api, placed: "Saved.", an error on its field, or the form's alert.
    Effect::new(move |_| match save.value().get() {
        Some(Ok(())) => saved.set(true),
        Some(Err((edition, e))) => {
            let key = match (edition, e.field.as_deref()) {
                (None, Some(f @ ("title" | "description" | "genres"))) => Some(f.to_owned()),
                (Some(edition), Some("name")) => Some(format!("{edition}:name")),
                (Some(edition), Some("price" | "currency")) => Some(format!("{edition}:price")),
                _ => None,
            };
            match key {
                Some(key) => {
                    errors.set(vec![(key, e.message)]);
                    focus_first_invalid();
                }
                None => alert.set(Some(e.message)),
            }
        }
        None => {}
    });
    let fields_for_check = fields.clone();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        alert.set(None);
        let mut found = EditErrors::new();
        if let Err(e) = domain::catalog::parse_title(&title_value.get_untracked()) {
            found.push(("title".to_owned(), e.to_string()));
        }
        if let Err(e) = domain::catalog::parse_description(&description.get_untracked()) {
            found.push(("description".to_owned(), e.to_string()));
        }
        if genres.with_untracked(Vec::is_empty) {
            found.push(("genres".to_owned(), "Choose at least one genre.".to_owned()));
        }
        for (edition_id, _, name, price) in &fields_for_check {
            if let Err(e) = domain::catalog::parse_edition_name(&name.get_untracked()) {
                found.push((format!("{edition_id}:name"), e.to_string()));
            }
            let ok =
                domain::money::parse_price(&price.get_untracked(), domain::money::Currency::EUR)
                    .is_some_and(|minor| {
                        domain::money::Money::price(minor, domain::money::Currency::EUR).is_ok()
                    });
            if !ok {
                found.push((
                    format!("{edition_id}:price"),
                    "Enter a price like 19.99 (at most 1000000.00).".to_owned(),
                ));
            }
        }
        let ok = found.is_empty();
        errors.set(found);
        if ok {
            save.dispatch(());
        } else {
            focus_first_invalid();
        }
    };
    let pid = product_id;
    let genres_error_id = format!("genres-{pid}-error");
    let error_of = move |key: String| {
        move || errors.with(|e| e.iter().find(|(k, _)| *k == key).map(|(_, m)| m.clone()))
    };
    let invalid = move |key: String| {
        move || {
            errors
                .with(|e| e.iter().any(|(k, _)| *k == key))
                .to_string()
        }
    };
    let text_field = move |key: &'static str,
                           label: &'static str,
                           value: RwSignal<String>,
                           multiline: bool| {
        let field_id = format!("{key}-{pid}");
        let error_id = format!("{field_id}-error");
        let error_id2 = error_id.clone();
        let err = error_of(key.to_owned());
        let bad = invalid(key.to_owned());
        let bad2 = invalid(key.to_owned());
        let described = move || {
            if bad2() == "true" {
                error_id.clone()
            } else {
                String::new()
            }
        };
        let control = if multiline {
            view! {
                <textarea id=field_id.clone() rows="4" aria-invalid=bad aria-describedby=described prop:value=value on:input=move |ev| value.set(event_target_value(&ev))></textarea>
            }
            .into_any()
        } else {
            view! {
                <input id=field_id.clone() type="text" aria-invalid=bad aria-describedby=described prop:value=value on:input=move |ev| value.set(event_target_value(&ev)) />
            }
            .into_any()
        };
        view! {
            <div class="field">
                <label for=field_id>{label}</label>
                {control}
                {move || err().map(|m| view! { <p class="field__error" id=error_id2.clone()>{m}</p> })}
            </div>
        }
    };
    let genres_error_id2 = genres_error_id.clone();
    let genres_error = error_of("genres".to_owned());
    let genres_error2 = error_of("genres".to_owned());
    let genres_invalid = invalid("genres".to_owned());
    view! {
        <form class="form form--card edit-product" novalidate=true aria-label=move || format!("Edit {}", title.get()) on:submit=on_submit>
            {text_field("title", "Title", title_value, false)}
            {text_field("description", "Description (Markdown)", description, true)}
            <fieldset class="field field--kind" aria-invalid=genres_invalid aria-describedby=move || if genres_error2().is_some() { genres_error_id.clone() } else { String::new() }>
                <legend>"Genres"</legend>
                {GENRES.iter().map(|(slug, label)| {
                    let slug = *slug;
                    view! {
                        <label class="chip">
                            <input
                                type="checkbox"
                                value=slug
                                prop:checked=move || genres.with(|g| g.iter().any(|x| x == slug))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    genres.update(|g| {
                                        g.retain(|x| x != slug);
                                        if on {
                                            g.push(slug.to_owned());
                                        }
                                    });
                                }
                            />
                            {*label}
                        </label>
                    }
                }).collect_view()}
                {move || genres_error().map(|m| view! { <p class="field__error" id=genres_error_id2.clone()>{m}</p> })}
            </fieldset>
            {fields.into_iter().map(|(edition_id, shown, name, price)| {
                let name_key = format!("{edition_id}:name");
                let price_key = format!("{edition_id}:price");
                let name_id = format!("edition-name-{edition_id}");
                let price_id = format!("edition-price-{edition_id}");
                let (name_error_id, price_error_id) = (format!("{name_id}-error"), format!("{price_id}-error"));
                let (name_error_id2, price_error_id2) = (name_error_id.clone(), price_error_id.clone());
                let (name_err, price_err) = (error_of(name_key.clone()), error_of(price_key.clone()));
                let (name_bad, price_bad) = (invalid(name_key.clone()), invalid(price_key.clone()));
                let (name_bad2, price_bad2) = (invalid(name_key), invalid(price_key));
                view! {
                    <fieldset class="edit-edition">
                        <legend>{move || format!("Edition {}", shown.name.get())}</legend>
                        <div class="field">
                            <label for=name_id.clone()>"Edition name"</label>
                            <input id=name_id type="text" aria-invalid=name_bad aria-describedby=move || if name_bad2() == "true" { name_error_id.clone() } else { String::new() } prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                            {move || name_err().map(|m| view! { <p class="field__error" id=name_error_id2.clone()>{m}</p> })}
                        </div>
                        <div class="field">
                            <label for=price_id.clone()>"Price (EUR)"</label>
                            <input id=price_id type="text" inputmode="decimal" aria-invalid=price_bad aria-describedby=move || if price_bad2() == "true" { price_error_id.clone() } else { String::new() } prop:value=price on:input=move |ev| price.set(event_target_value(&ev)) />
                            {move || price_err().map(|m| view! { <p class="field__error" id=price_error_id2.clone()>{m}</p> })}
                        </div>
                    </fieldset>
                }
            }).collect_view()}
            <div aria-live="polite">
                {move || saved.get().then(|| view! { <p class="alert alert--ok" role="status">"Saved."</p> })}
            </div>
            {move || alert.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
            <button class="button button--primary" type="submit" disabled=move || save.pending().get()>
                {move || if save.pending().get() { "Saving…" } else { "Save changes" }}
            </button>
        </form>
    }
}

/// How often fulfillment is asked about a stock command at first, and at most.
const STOCK_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const STOCK_POLL_MAX: std::time::Duration = std::time::Duration::from_secs(3);

/// Where a stock change is, as the form says it (each lasts until the next change).
#[derive(Clone, Debug, PartialEq)]
enum StockState {
    Sending,
    /// Sent; fulfillment has not applied it yet.
    Waiting,
    Applied(String),
    Failed(String),
}

#[component]
fn EditionRow(edition: MyEdition, shown: ShownEdition) -> impl IntoView {
    let physical = edition.kind.domain() == Some(domain::catalog::EditionKind::Physical);
    let quantity = RwSignal::new(edition.stock.unwrap_or(0).to_string());
    let id = edition.id.clone();
    let state = RwSignal::new(None::<StockState>);
    let save = Action::new_local(move |(edition_id, wanted): &(String, i64)| {
        let vars = set_stock::Variables {
            edition_id: edition_id.clone(),
            mode: set_stock::StockMode::SET,
            quantity: *wanted,
            // One key per save: a retry after a lost answer is the same command.
            idempotency_key: Some(crate::state::idempotency_key()),
        };
        let wanted = *wanted;
        async move {
            state.try_set(Some(StockState::Sending));
            let command_id = match api::request::<SetStock>(vars).await {
                Ok(data) => data.set_stock.command_id,
                Err(e) => {
                    state.try_set(Some(StockState::Failed(e.message)));
                    return;
                }
            };
            state.try_set(Some(StockState::Waiting));
            // Fulfillment applies the command a moment later: ask until it did (or gave up),
            // less often as it takes longer; stop when the page is gone.
            let mut wait = STOCK_POLL_FIRST;
            loop {
                crate::components::sleep(wait).await;
                if state.try_get_untracked().is_none() {
                    return;
                }
                wait = (wait * 3 / 2).min(STOCK_POLL_MAX);
                let asked = api::request::<StockCommand>(stock_command::Variables {
                    command_id: command_id.clone(),
                })
                .await;
                let name = shown.name.try_get_untracked().unwrap_or_default();
                let done = match asked.map(|data| data.stock_command) {
                    Ok(stock_command::StockCommandStatus::APPLIED) => {
                        StockState::Applied(format!("Stock of {name} set to {wanted}."))
                    }
                    Ok(stock_command::StockCommandStatus::FAILED) => StockState::Failed(format!(
                        "Fulfillment could not set the stock of {name}; the store's admins can see why."
                    )),
                    Ok(_) => continue,
                    // A lost answer is asked again; anything else is the end of it.
                    Err(e) if e.code.is_none() => continue,
                    Err(e) => StockState::Failed(e.message),
                };
                state.try_set(Some(done));
                return;
            }
        }
    });
    let input_id = format!("stock-{}", edition.id);
    let error_id = format!("{input_id}-error");
    let busy = move || matches!(state.get(), Some(StockState::Sending | StockState::Waiting));
    view! {
        <li class="edition">
            <div>
                <p class="edition__name">{move || shown.name.get()}</p>
                <p class="edition__stock">{format!("SKU {}", edition.sku)}</p>
            </div>
            <p class="edition__price">{move || shown.price.get()}</p>
            {physical.then(|| view! {
                <form class="stock-form" novalidate=true on:submit=move |ev| {
                    ev.prevent_default();
                    match quantity.get_untracked().trim().parse::<i64>() {
                        Ok(n) if (0..=domain::fulfillment::MAX_STOCK).contains(&n) => {
                            save.dispatch((id.clone(), n));
                        }
                        _ => state.set(Some(StockState::Failed(format!(
                            "Enter a stock between 0 and {}.",
                            domain::fulfillment::MAX_STOCK
                        )))),
                    }
                }>
                    <label for=input_id.clone()>"Stock"</label>
                    <input
                        id=input_id
                        class="qty"
                        type="number"
                        min="0"
                        aria-describedby=move || if matches!(state.get(), Some(StockState::Failed(_))) { error_id.clone() } else { String::new() }
                        prop:value=quantity
                        on:input=move |ev| quantity.set(event_target_value(&ev))
                    />
                    <button class="button" type="submit" disabled=busy>"Set"</button>
                    {
                        let error_id = format!("stock-{}-error", edition.id);
                        move || match state.get() {
                            None => ().into_any(),
                            Some(StockState::Sending) => view! { <p class="muted" role="status">"Saving…"</p> }.into_any(),
                            Some(StockState::Waiting) => view! { <p class="muted" role="status">"Sent; waiting for fulfillment to apply it…"</p> }.into_any(),
                            Some(StockState::Applied(text)) => view! { <p class="alert alert--ok" role="status">{text}</p> }.into_any(),
                            Some(StockState::Failed(text)) => view! { <p class="alert alert--error" role="alert" id=error_id.clone()>{text}</p> }.into_any(),
                        }
                    }
                </form>
            })}
            <Discounts edition_id=edition.id.clone() list=edition.discounts.clone() />
            <RegionalPrices edition_id=edition.id.clone() list=edition.prices.clone() />
        </li>
    }
}

/// An edition's prices in the other currencies the store sells in: each the publisher's own or
/// the suggested conversion of the base price (shown as the field's placeholder). Saving sends
/// every filled field; an emptied field goes back to the suggestion.
#[component]
fn RegionalPrices(
    edition_id: String,
    list: Vec<my_products::MyProductsMyProductsNodesEditionsPrices>,
) -> impl IntoView {
    // The base price's currency comes first and is set with the edition itself.
    let others: Vec<_> = list.into_iter().skip(1).collect();
    let fields: Vec<(String, String, RwSignal<String>)> = others
        .iter()
        .map(|p| {
            let own = if p.set_by_publisher {
                domain::money::Currency::parse(&p.currency)
                    .map(|c| plain_amount(p.price.amount_minor, c))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            (
                p.currency.clone(),
                p.suggested.formatted.clone(),
                RwSignal::new(own),
            )
        })
        .collect();
    let answer = RwSignal::new(None::<Result<String, String>>);
    let save = Action::new_local(move |vars: &set_edition_prices::Variables| {
        let vars = vars.clone();
        async move {
            let n = vars.prices.len();
            match api::request::<SetEditionPrices>(vars).await {
                Ok(_) => answer.try_set(Some(Ok(format!(
                    "Saved: {n} price{} of your own; the rest follow the suggestion.",
                    if n == 1 { "" } else { "s" }
                )))),
                Err(e) => answer.try_set(Some(Err(e.message))),
            };
        }
    });
    let sent = fields.clone();
    let field_ids = edition_id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut prices = Vec::new();
        for (code, _, value) in &sent {
            let typed = value.get_untracked();
            if typed.trim().is_empty() {
                continue;
            }
            let currency =
                domain::money::Currency::parse(code).unwrap_or(domain::money::Currency::EUR);
            match domain::money::parse_price(&typed, currency) {
                Some(minor) => prices.push(set_edition_prices::MoneyInput {
                    amount_minor: minor,
                    currency: code.clone(),
                }),
                None => {
                    answer.set(Some(Err(format!(
                        "Enter a price in {code}, such as {}.",
                        if currency.exponent() == 0 {
                            "3200"
                        } else {
                            "19.99"
                        }
                    ))));
                    return;
                }
            }
        }
        save.dispatch(set_edition_prices::Variables {
            edition_id: edition_id.clone(),
            prices,
        });
    };
    view! {
        <details class="regional-prices">
            <summary>"Prices in other currencies"</summary>
            <form class="form regional-prices__form" on:submit=submit novalidate=true>
                <p class="muted">"Empty fields sell at the suggested price, converted from the base price."</p>
                <div class="regional-prices__grid">
                    {fields.into_iter().map(|(code, suggested, value)| {
                        let id = format!("price-{field_ids}-{code}");
                        view! {
                            <label for=id.clone()>{code.clone()}</label>
                            <input id=id type="text" inputmode="decimal" class="qty" placeholder=suggested
                                prop:value=value on:input=move |ev| value.set(event_target_value(&ev)) />
                        }
                    }).collect_view()}
                </div>
                <button class="button" type="submit" disabled=move || save.pending().get()>"Save prices"</button>
                {move || match answer.get() {
                    Some(Ok(m)) => view! { <p class="alert alert--ok" role="status">{m}</p> }.into_any(),
                    Some(Err(m)) => view! { <p class="alert alert--error" role="alert">{m}</p> }.into_any(),
                    None => ().into_any(),
                }}
            </form>
        </details>
    }
}

/// `1999` EUR as `19.99`, `3200` JPY as `3200`: what a price field holds.
fn plain_amount(minor: i64, currency: domain::money::Currency) -> String {
    let text = domain::money::Money { minor, currency }.format();
    text.split(' ').next().unwrap_or_default().to_owned()
}

/// One discount as the publisher's list shows it.
#[derive(Clone, Debug, PartialEq)]
struct DiscountRow {
    id: String,
    percent: i64,
    starts_at: String,
    ends_at: String,
    /// `SCHEDULED`, `RUNNING`, `ENDED` or `CANCELLED`.
    status: String,
}

fn discount_words(d: &DiscountRow) -> String {
    let window = format!("{} to {}", short_time(&d.starts_at), short_time(&d.ends_at));
    match d.status.as_str() {
        "RUNNING" => format!("{} % off now, until {}", d.percent, short_time(&d.ends_at)),
        "SCHEDULED" => format!("{} % off from {window}", d.percent),
        "CANCELLED" => format!("{} % off, cancelled before it began", d.percent),
        _ => format!("{} % off, {window} (over)", d.percent),
    }
}

/// A `datetime-local` value (the browser's time zone) as RFC 3339 in UTC.
fn local_to_utc(value: &str) -> Option<String> {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(value));
    date.get_time()
        .is_finite()
        .then(|| String::from(date.to_iso_string()))
}

/// An edition's discounts (scheduled, running, the last few past ones) with "End now", and a
/// form to schedule one: percent off, a start (now when left empty) and a number of days.
/// What the store answered stays on screen until the form is sent again.
#[component]
fn Discounts(
    edition_id: String,
    list: Vec<my_products::MyProductsMyProductsNodesEditionsDiscounts>,
) -> impl IntoView {
    let rows = RwSignal::new(
        list.into_iter()
            .take(4)
            .map(|d| DiscountRow {
                id: d.id,
                percent: d.percent,
                starts_at: d.starts_at,
                ends_at: d.ends_at,
                status: enum_name(&d.status),
            })
            .collect::<Vec<_>>(),
    );
    let percent = RwSignal::new(String::new());
    let starts = RwSignal::new(String::new());
    let days = RwSignal::new("7".to_owned());
    let answer = RwSignal::new(None::<Result<String, String>>);
    let schedule = Action::new_local(move |input: &schedule_discount::ScheduleDiscountInput| {
        let input = input.clone();
        async move {
            match api::request::<ScheduleDiscount>(schedule_discount::Variables { input }).await {
                Ok(data) => {
                    let d = data.schedule_discount;
                    let row = DiscountRow {
                        id: d.id,
                        percent: d.percent,
                        starts_at: d.starts_at,
                        ends_at: d.ends_at,
                        status: enum_name(&d.status),
                    };
                    answer.try_set(Some(Ok(format!("Scheduled: {}.", discount_words(&row)))));
                    rows.try_update(|r| r.insert(0, row));
                }
                Err(e) => {
                    answer.try_set(Some(Err(e.message)));
                }
            }
        }
    });
    let end = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move {
            match api::request::<EndDiscount>(end_discount::Variables { id }).await {
                Ok(data) => {
                    let d = data.end_discount;
                    let status = enum_name(&d.status);
                    answer.try_set(Some(Ok(format!("Ended: {} % off.", d.percent))));
                    rows.try_update(|r| {
                        if let Some(row) = r.iter_mut().find(|row| row.id == d.id) {
                            row.status = status;
                            row.ends_at = d.ends_at;
                        }
                    });
                }
                Err(e) => {
                    answer.try_set(Some(Err(e.message)));
                }
            }
        }
    });
    let percent_id = format!("discount-percent-{edition_id}");
    let starts_id = format!("discount-starts-{edition_id}");
    let days_id = format!("discount-days-{edition_id}");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pct = percent.get_untracked().trim().parse::<i64>().ok();
        let Some(pct) = pct
            .filter(|p| (1..=domain::catalog::discount::MAX_DISCOUNT_PERCENT as i64).contains(p))
        else {
            answer.set(Some(Err(format!(
                "Enter a discount between 1 and {} percent.",
                domain::catalog::discount::MAX_DISCOUNT_PERCENT
            ))));
            return;
        };
        let n_days = days.get_untracked().trim().parse::<i64>().ok();
        let Some(n_days) =
            n_days.filter(|d| (1..=domain::catalog::discount::MAX_DISCOUNT_DAYS).contains(d))
        else {
            answer.set(Some(Err(format!(
                "Enter a number of days between 1 and {}.",
                domain::catalog::discount::MAX_DISCOUNT_DAYS
            ))));
            return;
        };
        let start_text = starts.get_untracked();
        let start = if start_text.trim().is_empty() {
            None
        } else {
            match local_to_utc(&start_text) {
                Some(s) => Some(s),
                None => {
                    answer.set(Some(Err(
                        "Enter a valid start, or leave it empty to start now.".to_owned(),
                    )));
                    return;
                }
            }
        };
        let from_ms = start
            .as_deref()
            .map_or_else(js_sys::Date::now, js_sys::Date::parse);
        let ends = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
            from_ms + n_days as f64 * 86_400_000.0,
        ));
        schedule.dispatch(schedule_discount::ScheduleDiscountInput {
            edition_id: edition_id.clone(),
            percent: pct,
            starts_at: start,
            ends_at: String::from(ends.to_iso_string()),
        });
    };
    view! {
        <div class="discounts">
            <ul class="discounts__list">
                {move || rows.get().into_iter().map(|d| {
                    let id = d.id.clone();
                    let open = matches!(d.status.as_str(), "RUNNING" | "SCHEDULED");
                    view! {
                        <li class="discounts__item">
                            <span>{discount_words(&d)}</span>
                            {open.then(|| view! {
                                <button class="button" type="button" disabled=move || end.pending().get()
                                    on:click=move |_| { end.dispatch(id.clone()); }>
                                    {if d.status == "RUNNING" { "End now" } else { "Cancel" }}
                                </button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="discount-form" novalidate=true on:submit=submit>
                <label for=percent_id.clone()>"Percent off"</label>
                <input id=percent_id class="qty" type="number" min="1" max="95" prop:value=percent
                    on:input=move |ev| percent.set(event_target_value(&ev)) />
                <label for=starts_id.clone()>"Starts (empty: now)"</label>
                <input id=starts_id type="datetime-local" prop:value=starts
                    on:input=move |ev| starts.set(event_target_value(&ev)) />
                <label for=days_id.clone()>"Days"</label>
                <input id=days_id class="qty" type="number" min="1" max="92" prop:value=days
                    on:input=move |ev| days.set(event_target_value(&ev)) />
                <button class="button" type="submit" disabled=move || schedule.pending().get()>"Put on sale"</button>
            </form>
            {move || match answer.get() {
                None => ().into_any(),
                Some(Ok(text)) => view! { <p class="alert alert--ok" role="status">{text}</p> }.into_any(),
                Some(Err(text)) => view! { <p class="alert alert--error" role="alert">{text}</p> }.into_any(),
            }}
        </div>
    }
}

#[component]
fn NewProduct(version: RwSignal<u32>) -> impl IntoView {
    let title = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let genre = RwSignal::new(String::from(GENRES[0].0));
    let platform = RwSignal::new(String::from(PLATFORMS[0].0));
    let kind = RwSignal::new(String::from("DIGITAL"));
    let edition_name = RwSignal::new(String::from("Standard"));
    let sku = RwSignal::new(String::new());
    let price = RwSignal::new(String::from("19.99"));
    let create = Action::new_local(move |(): &()| {
        let product = create_product::CreateProductInput {
            title: title.get_untracked().trim().to_owned(),
            slug: None,
            description: description.get_untracked(),
            genres: vec![genre.get_untracked()],
            platforms: vec![platform.get_untracked()],
            tags: Vec::new(),
            release_date: None,
            age_rating: None,
            system_requirements: String::new(),
        };
        let physical = kind.get_untracked() == "PHYSICAL";
        let price_minor = price
            .get_untracked()
            .trim()
            .replace(',', ".")
            .parse::<f64>()
            .map(|v| (v * 100.0).round() as i64);
        let edition = (edition_name.get_untracked(), sku.get_untracked());
        // The catalog's rules, checked before anything is created: a draft without its
        // edition would be left behind otherwise.
        let checked = domain::catalog::parse_title(&product.title)
            .and_then(|_| domain::catalog::parse_edition_name(&edition.0))
            .and_then(|_| domain::catalog::parse_sku(&edition.1))
            .map_err(|e| ApiError {
                message: e.to_string(),
                code: None,
                field: None,
            });
        async move {
            checked?;
            let Ok(amount_minor) = price_minor else {
                return Err(ApiError {
                    message: "Enter a price like 19.99.".to_owned(),
                    code: None,
                    field: Some("price".to_owned()),
                });
            };
            let product_id =
                api::request::<CreateProduct>(create_product::Variables { input: product })
                    .await?
                    .create_product
                    .id;
            let input = add_edition::EditionInput {
                kind: if physical {
                    add_edition::EditionKind::PHYSICAL
                } else {
                    add_edition::EditionKind::DIGITAL
                },
                name: edition.0,
                sku: edition.1,
                price: add_edition::MoneyInput {
                    amount_minor,
                    currency: "EUR".to_owned(),
                },
                weight_grams: physical.then_some(250),
            };
            let result = api::request::<AddEdition>(add_edition::Variables { product_id, input })
                .await
                .map(|_| ());
            version.update(|v| *v += 1);
            result
        }
    });
    let text = |id: &'static str, label: &'static str, value: RwSignal<String>| {
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input id=id type="text" required=true prop:value=value on:input=move |ev| value.set(event_target_value(&ev)) />
            </div>
        }
    };
    view! {
        <form class="form form--card" aria-labelledby="new-product-title" on:submit=move |ev| { ev.prevent_default(); create.dispatch(()); }>
            <h2 id="new-product-title">"New product"</h2>
            {text("p-title", "Title", title)}
            <div class="field">
                <label for="p-description">"Description (Markdown)"</label>
                <textarea id="p-description" rows="4" prop:value=description on:input=move |ev| description.set(event_target_value(&ev))></textarea>
            </div>
            <div class="field">
                <label for="p-genre">"Genre"</label>
                <select id="p-genre" on:change=move |ev| genre.set(event_target_value(&ev))>
                    {GENRES.iter().map(|(slug, label)| view! { <option value=*slug>{*label}</option> }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="p-platform">"Platform"</label>
                <select id="p-platform" on:change=move |ev| platform.set(event_target_value(&ev))>
                    {PLATFORMS.iter().map(|(slug, label)| view! { <option value=*slug>{*label}</option> }).collect_view()}
                </select>
            </div>
            <fieldset class="field field--kind">
                <legend>"First edition"</legend>
                <label class="chip"><input type="radio" name="p-kind" value="DIGITAL" checked=true on:change=move |_| kind.set("DIGITAL".to_owned()) />"Digital"</label>
                <label class="chip"><input type="radio" name="p-kind" value="PHYSICAL" on:change=move |_| kind.set("PHYSICAL".to_owned()) />"Physical"</label>
            </fieldset>
            {text("p-edition", "Edition name", edition_name)}
            {text("p-sku", "SKU", sku)}
            {text("p-price", "Price (EUR)", price)}
            {move || outcome(create.value().get(), "Created as a draft: publish it from the list above.")}
            <button class="button button--primary" type="submit" disabled=move || create.pending().get()>"Create draft"</button>
        </form>
    }
}

/// The cover and its upload, with a progress bar.
#[component]
fn CoverUpload(product_id: String, cover: Option<String>) -> impl IntoView {
    let sent = RwSignal::new(None::<f64>);
    let cover = RwSignal::new(cover);
    let input_id = format!("cover-{product_id}");
    let upload = Action::new_local(
        move |(product_id, file): &(String, SendWrapper<web_sys::File>)| {
            let product_id = product_id.clone();
            let file = file.clone();
            async move {
                sent.set(Some(0.0));
                let result = upload_product_image(
                    &product_id,
                    upload_product_image::ImageKind::COVER,
                    &file,
                    move |fraction| sent.set(Some(fraction)),
                )
                .await;
                sent.set(None);
                result.map(|url| {
                    if url.is_some() {
                        cover.set(url);
                    }
                })
            }
        },
    );
    view! {
        <div class="upload">
            {move || cover.get().map(|url| view! { <img class="publisher-product__cover" src=url alt="Current cover" /> })}
            <label for=input_id.clone()>"Cover image (PNG, JPEG or WebP)"</label>
            <input
                id=input_id
                type="file"
                accept="image/png,image/jpeg,image/webp"
                on:change=move |ev| {
                    let input: web_sys::HtmlInputElement = event_target(&ev);
                    if let Some(file) = input.files().and_then(|files| files.get(0)) {
                        upload.dispatch((product_id.clone(), SendWrapper::new(file)));
                    }
                }
            />
            {move || sent.get().map(|fraction| view! {
                <progress max="100" value=(fraction * 100.0).round() aria-label="Upload progress">
                    {format!("{:.0}%", fraction * 100.0)}
                </progress>
            })}
            {move || outcome(upload.value().get(), "Cover uploaded.")}
        </div>
    }
}

/// Sales of the publisher's products as they complete (the `salesFeed` subscription).
#[component]
fn LiveSales(sale_tick: RwSignal<u32>) -> impl IntoView {
    let sales = RwSignal::new(Vec::<sales_feed::SalesFeedSalesFeed>::new());
    let live = StoredValue::new_local(None::<ws::Handle>);
    Effect::new(move |_| {
        let handle = ws::subscribe::<SalesFeed>(sales_feed::Variables {}, move |data| {
            sales.try_update(|list| {
                list.insert(0, data.sales_feed);
                list.truncate(20);
            });
            sale_tick.try_update(|t| *t += 1);
        });
        live.set_value(Some(handle));
    });
    view! {
        <section class="live-sales" aria-labelledby="live-sales-title">
            <h2 id="live-sales-title">"Live sales"</h2>
            <ul class="list" aria-live="polite">
                {move || {
                    let list = sales.get();
                    if list.is_empty() {
                        return view! { <li class="muted">"Sales appear here as they happen."</li> }.into_any();
                    }
                    list.into_iter()
                        .map(|sale| {
                            let what = sale
                                .lines
                                .iter()
                                .map(|l| format!("{} × {} ({})", l.quantity, l.product_title, l.edition_name))
                                .collect::<Vec<_>>()
                                .join(", ");
                            view! {
                                <li class="list__item sale">
                                    <span>{what}</span>
                                    <strong>{sale.amount.formatted}</strong>
                                    <time class="muted" datetime=sale.at.clone()>{short_time(&sale.at)}</time>
                                </li>
                            }
                        })
                        .collect_view()
                        .into_any()
                }}
            </ul>
        </section>
    }
}

/// How often the list of orders to ship is asked for again, in case the socket is down.
const SHIPMENTS_POLL: std::time::Duration = std::time::Duration::from_secs(60);

type Pending = pending_shipments::PendingShipmentsPendingShipments;

/// Orders with the publisher's physical editions, paid and waiting to be shipped: kept live by
/// the `shipmentsUpdated` subscription (each update refetches the list).
#[component]
fn PendingShipmentList() -> impl IntoView {
    let version = RwSignal::new(0_u32);
    let list = RwSignal::new(None::<Result<Vec<Pending>, ApiError>>);
    let shipped = RwSignal::new(None::<String>);
    let live = StoredValue::new_local(None::<ws::Handle>);
    Effect::new(move |_| {
        let refetch = move || {
            version.try_update(|v| *v += 1);
        };
        let handle = ws::subscribe_resuming::<ShipmentsUpdated>(
            shipments_updated::Variables {},
            move |_| refetch(),
            refetch,
        );
        live.set_value(Some(handle));
    });
    if let Ok(handle) = set_interval_with_handle(
        move || {
            version.try_update(|v| *v += 1);
        },
        SHIPMENTS_POLL,
    ) {
        on_cleanup(move || handle.clear());
    }
    // Each answer replaces the list; the rows are keyed by order, so a form being filled in
    // stays as it is when another order arrives.
    let fetched = LocalResource::new(move || {
        version.track();
        async move {
            api::request::<PendingShipments>(pending_shipments::Variables { first: 50 })
                .await
                .map(|data| data.pending_shipments)
        }
    });
    Effect::new(move |_| {
        if let Some(result) = fetched.get() {
            list.set(Some(result));
        }
    });
    let rows = move || {
        list.with(|l| match l {
            Some(Ok(rows)) => rows.clone(),
            _ => Vec::new(),
        })
    };
    view! {
        <section class="pending-shipments" aria-labelledby="pending-title">
            <h2 id="pending-title">
                "Pending shipments"
                {move || list.with(|l| match l {
                    Some(Ok(rows)) if !rows.is_empty() => format!(" ({})", rows.len()),
                    _ => String::new(),
                })}
            </h2>
            <div aria-live="polite">
                {move || shipped.get().map(|m| view! { <p class="alert alert--ok" role="status">{m}</p> })}
            </div>
            {move || match list.get() {
                None => view! { <Loading label="Loading the orders to ship…" /> }.into_any(),
                Some(Err(e)) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
                Some(Ok(rows)) if rows.is_empty() => view! {
                    <p class="muted">"No orders to ship. Paid orders of your physical editions appear here as they come in."</p>
                }
                .into_any(),
                Some(Ok(_)) => ().into_any(),
            }}
            <ul class="list" aria-label="Orders to ship">
                <For each=rows key=|p| p.order_id.clone() let(pending)>
                    <PendingRow pending shipped version />
                </For>
            </ul>
        </section>
    }
}

#[component]
fn PendingRow(
    pending: Pending,
    shipped: RwSignal<Option<String>>,
    version: RwSignal<u32>,
) -> impl IntoView {
    let order_id = pending.order_id.clone();
    let short = order_id.chars().take(8).collect::<String>();
    let carrier = RwSignal::new(String::new());
    let tracking = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldErrors::new());
    let alert = RwSignal::new(None::<String>);
    let ship = Action::new_local(move |vars: &ship_order::Variables| {
        let vars = vars.clone();
        async move {
            let summary = format!(
                "Order {} shipped with {} (tracking number {}).",
                vars.order_id.chars().take(8).collect::<String>(),
                vars.carrier,
                vars.tracking_number
            );
            match api::request::<ShipOrder>(vars).await {
                Ok(_) => {
                    shipped.set(Some(summary));
                    version.update(|v| *v += 1);
                }
                Err(error) => {
                    match error.field.as_deref() {
                        Some("carrier") => errors.set(vec![("carrier", error.message)]),
                        Some("trackingNumber") => {
                            errors.set(vec![("trackingNumber", error.message)]);
                        }
                        _ => alert.set(Some(error.message)),
                    }
                    focus_first_invalid();
                }
            }
        }
    });
    let on_submit = {
        let order_id = order_id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            alert.set(None);
            let mut found = FieldErrors::new();
            let check = |field: &'static str, label: &str, value: &str, found: &mut FieldErrors| {
                let n = value.trim().chars().count();
                if n == 0 || n > domain::fulfillment::MAX_TRACKING_LEN {
                    found.push((
                        field,
                        format!(
                            "{label} must be 1 to {} characters",
                            domain::fulfillment::MAX_TRACKING_LEN
                        ),
                    ));
                }
            };
            check(
                "carrier",
                "The carrier",
                &carrier.get_untracked(),
                &mut found,
            );
            check(
                "trackingNumber",
                "The tracking number",
                &tracking.get_untracked(),
                &mut found,
            );
            let ok = found.is_empty();
            errors.set(found);
            if !ok {
                focus_first_invalid();
                return;
            }
            ship.dispatch(ship_order::Variables {
                order_id: order_id.clone(),
                carrier: carrier.get_untracked().trim().to_owned(),
                tracking_number: tracking.get_untracked().trim().to_owned(),
            });
        }
    };
    let a = pending.address;
    let error_of = move |field: &'static str| {
        move || errors.with(|e| e.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone()))
    };
    let invalid = move |field: &'static str| {
        move || {
            errors
                .with(|e| e.iter().any(|(f, _)| *f == field))
                .to_string()
        }
    };
    let carrier_id = format!("carrier-{order_id}");
    let tracking_id = format!("tracking-{order_id}");
    let carrier_error_id = format!("{carrier_id}-error");
    let tracking_error_id = format!("{tracking_id}-error");
    let (carrier_error_id2, tracking_error_id2) =
        (carrier_error_id.clone(), tracking_error_id.clone());
    let carriers_id = format!("carriers-{order_id}");
    view! {
        <li class="list__item pending-shipment" data-order-id=order_id.clone()>
            <div>
                <h3 class="library__title">{format!("Order {short}")}</h3>
                <p class="muted">{pending.paid_at.as_deref().map(|t| format!("Paid {}", short_time(t))).unwrap_or_default()}</p>
                <ul class="pending-shipment__lines">
                    {pending.lines.into_iter().map(|l| view! {
                        <li>{format!("{} × {} ({})", l.quantity, l.product_title, l.edition_name)}</li>
                    }).collect_view()}
                </ul>
                <address>
                    {a.name}<br />{a.street}<br />{format!("{} {}", a.postal_code, a.city)}<br />
                    {[a.region, a.country].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")}<br />
                    {a.phone}
                </address>
            </div>
            <form class="ship-form" novalidate=true aria-label=format!("Ship order {short}") on:submit=on_submit>
                <div class="field">
                    <label for=carrier_id.clone()>"Carrier"</label>
                    <input
                        id=carrier_id
                        type="text"
                        list=carriers_id.clone()
                        required=true
                        maxlength=domain::fulfillment::MAX_TRACKING_LEN
                        aria-invalid=invalid("carrier")
                        aria-describedby=move || if invalid("carrier")() == "true" { carrier_error_id.clone() } else { String::new() }
                        prop:value=carrier
                        on:input=move |ev| carrier.set(event_target_value(&ev))
                    />
                    <datalist id=carriers_id>
                        {["DHL", "DPD", "FedEx", "GLS", "La Poste", "Royal Mail", "UPS", "USPS"].map(|c| view! { <option value=c></option> })}
                    </datalist>
                    {move || error_of("carrier")().map(|m| view! { <p class="field__error" id=carrier_error_id2.clone()>{m}</p> })}
                </div>
                <div class="field">
                    <label for=tracking_id.clone()>"Tracking number"</label>
                    <input
                        id=tracking_id
                        type="text"
                        required=true
                        maxlength=domain::fulfillment::MAX_TRACKING_LEN
                        aria-invalid=invalid("trackingNumber")
                        aria-describedby=move || if invalid("trackingNumber")() == "true" { tracking_error_id.clone() } else { String::new() }
                        prop:value=tracking
                        on:input=move |ev| tracking.set(event_target_value(&ev))
                    />
                    {move || error_of("trackingNumber")().map(|m| view! { <p class="field__error" id=tracking_error_id2.clone()>{m}</p> })}
                </div>
                {move || alert.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
                <button class="button button--primary" type="submit" disabled=move || ship.pending().get()>
                    {move || if ship.pending().get() { "Shipping…" } else { "Mark as shipped" }}
                </button>
            </form>
        </li>
    }
}
