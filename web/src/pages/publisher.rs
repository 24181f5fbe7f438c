//! Publisher: orders to ship (live), their products in every state, a new product with its first
//! edition, publishing, and stock of physical editions.

use domain::catalog::{GENRES, PLATFORMS};
use leptos::prelude::*;
use leptos_router::components::A;
use send_wrapper::SendWrapper;

use crate::api::queries::{
    AddEdition, CreateProduct, MyProducts, PublishProduct, SetStock, add_edition, create_product,
    my_products, publish_product, set_stock,
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
    Empty, FieldErrors, Loading, error_fallback, focus_first_invalid, short_time,
};
use crate::page::Page;

fn outcome(result: Option<Result<(), ApiError>>, ok: &'static str) -> impl IntoView + use<> {
    result.map(|r| match r {
        Ok(()) => view! { <p class="alert alert--ok" role="status">{ok}</p> }.into_any(),
        Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
    })
}

#[component]
pub fn Publisher() -> impl IntoView {
    let version = RwSignal::new(0_u32);
    // The last stock change, kept above the list (the list is rebuilt when it changes).
    let stock_notice = RwSignal::new(None::<String>);
    // Bumped by each live sale: the revenue figures are fetched again.
    let sale_tick = RwSignal::new(0_u32);
    let products = LocalResource::new(move || {
        version.track();
        async move {
            api::request::<MyProducts>(my_products::Variables { first: 100 })
                .await
                .map(|data| data.my_products.nodes)
        }
    });
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
            <h2>"Your products"</h2>
            {move || outcome(publish.value().get(), "Published.")}
            {move || stock_notice.get().map(|text| view! { <p class="alert alert--ok" role="status">{text}</p> })}
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        products.await.map(|products| {
                            if products.is_empty() {
                                return view! { <Empty title="No products yet"><p>"Create your first one below."</p></Empty> }.into_any();
                            }
                            view! {
                                <ul class="list">
                                    {products.into_iter().map(|p| {
                                        let status = enum_name(&p.status);
                                        let draft = status == "DRAFT";
                                        let id = p.id.clone();
                                        view! {
                                            <li class="list__item publisher-product">
                                                <div>
                                                    <h2 class="library__title"><A href=Page::Product(p.slug).href()>{p.title}</A></h2>
                                                    <p class="muted">{status}{p.moderation_reason.map(|r| format!(" — {r}"))}</p>
                                                    <CoverUpload product_id=id.clone() cover=p.cover.map(|c| c.url) />
                                                    <ul class="editions">
                                                        {p.editions.into_iter().map(|e| view! { <EditionRow edition=e version stock_notice /> }).collect_view()}
                                                    </ul>
                                                    <crate::pages::builds::Builds product_id=id.clone() />
                                                </div>
                                                {draft.then(|| view! {
                                                    <button class="button button--primary" type="button" on:click=move |_| { publish.dispatch(id.clone()); }>"Publish"</button>
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
            <NewProduct version />
            <crate::pages::giftkeys::GiftKeys />
        </section>
    }
}

/// How often, and how many times, the list is read after a stock change until it shows it.
const STOCK_POLL: std::time::Duration = std::time::Duration::from_millis(500);
const STOCK_POLLS: u32 = 20;

#[component]
fn EditionRow(
    edition: my_products::MyProductsMyProductsNodesEditions,
    version: RwSignal<u32>,
    stock_notice: RwSignal<Option<String>>,
) -> impl IntoView {
    let physical = enum_name(&edition.kind) == "PHYSICAL";
    let quantity = RwSignal::new(edition.stock.unwrap_or(0).to_string());
    let id = edition.id.clone();
    let name = edition.name.clone();
    let save = Action::new_local(move |(edition_id, quantity): &(String, i64)| {
        let vars = set_stock::Variables {
            edition_id: edition_id.clone(),
            mode: set_stock::StockMode::SET,
            quantity: *quantity,
            // One key per save: a retry after a lost answer is the same command.
            idempotency_key: Some(crate::state::idempotency_key()),
        };
        let (edition_id, wanted, name) = (edition_id.clone(), *quantity, name.clone());
        async move {
            api::request::<SetStock>(vars).await?;
            // Fulfillment applies the command a moment later: the list is shown again once
            // it holds the new stock (or after a few seconds, whatever it holds then).
            for _ in 0..STOCK_POLLS {
                crate::components::sleep(STOCK_POLL).await;
                let applied = api::request::<MyProducts>(my_products::Variables { first: 100 })
                    .await
                    .is_ok_and(|data| {
                        data.my_products
                            .nodes
                            .iter()
                            .flat_map(|p| &p.editions)
                            .any(|e| e.id == edition_id && e.stock == Some(wanted))
                    });
                if applied {
                    stock_notice.set(Some(format!("Stock of {name} set to {wanted}.")));
                    version.update(|v| *v += 1);
                    return Ok(());
                }
            }
            stock_notice.set(Some(format!(
                "Stock of {name}: {wanted} was sent to fulfillment; the list shows it once applied."
            )));
            version.update(|v| *v += 1);
            Ok::<(), ApiError>(())
        }
    });
    let input_id = format!("stock-{}", edition.id);
    view! {
        <li class="edition">
            <div>
                <p class="edition__name">{edition.name}</p>
                <p class="edition__stock">{format!("SKU {}", edition.sku)}</p>
            </div>
            <p class="edition__price">{edition.price.formatted}</p>
            {physical.then(|| view! {
                <form class="stock-form" on:submit=move |ev| {
                    ev.prevent_default();
                    if let Ok(n) = quantity.get_untracked().trim().parse::<i64>() {
                        save.dispatch((id.clone(), n));
                    }
                }>
                    <label for=input_id.clone()>"Stock"</label>
                    <input id=input_id class="qty" type="number" min="0" prop:value=quantity on:input=move |ev| quantity.set(event_target_value(&ev)) />
                    <button class="button" type="submit" disabled=move || save.pending().get()>"Set"</button>
                    {move || save.pending().get().then(|| view! { <p class="muted" role="status">"Saving…"</p> })}
                    {move || save.value().get().and_then(Result::err).map(|e| view! { <p class="alert alert--error" role="alert">{e.message}</p> })}
                </form>
            })}
        </li>
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
