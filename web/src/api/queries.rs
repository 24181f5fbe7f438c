//! Every operation of the app, typed by `graphql_client` from `web/queries/*.graphql` against
//! `api/schema.graphql`: a schema change that breaks a query breaks this crate's build.

use graphql_client::GraphQLQuery;

/// The schema's `UUID` scalar, as the JSON string it travels as.
#[expect(clippy::upper_case_acronyms, reason = "the schema's scalar name")]
pub type UUID = String;
/// The schema's `DateTime` scalar (RFC 3339).
pub type DateTime = String;
/// The schema's `NaiveDate` scalar (`YYYY-MM-DD`).
pub type NaiveDate = String;
/// The schema's `Upload` scalar: `null` in the variables, the file travels as a multipart part.
pub type Upload = ();

macro_rules! operation {
    ($name:ident, $file:tt) => {
        #[derive(GraphQLQuery)]
        #[graphql(
                                                    schema_path = "../api/schema.graphql",
                                                    query_path = $file,
                                                    response_derives = "Debug, Clone, PartialEq",
                                                    variables_derives = "Debug, Clone, PartialEq"
                                                )]
        pub struct $name;
    };
}

operation!(SignIn, "queries/identity.graphql");
operation!(SignUp, "queries/identity.graphql");
operation!(RefreshSession, "queries/identity.graphql");
operation!(SignOut, "queries/identity.graphql");
operation!(SignOutEverywhere, "queries/identity.graphql");

operation!(Products, "queries/catalog.graphql");
operation!(Facets, "queries/catalog.graphql");
operation!(ProductPage, "queries/catalog.graphql");
operation!(Reviews, "queries/catalog.graphql");
operation!(OwnsProduct, "queries/catalog.graphql");
operation!(WriteReview, "queries/catalog.graphql");
operation!(AddToWishlist, "queries/catalog.graphql");
operation!(BundlePage, "queries/catalog.graphql");
operation!(BuyBundle, "queries/catalog.graphql");
operation!(RemoveFromWishlist, "queries/catalog.graphql");
operation!(Wishlist, "queries/catalog.graphql");

operation!(PlaceOrder, "queries/orders.graphql");
operation!(OrderPage, "queries/orders.graphql");
operation!(MyOrders, "queries/orders.graphql");
operation!(CancelOrder, "queries/orders.graphql");
operation!(OrderReceipt, "queries/orders.graphql");
operation!(BillingCountry, "queries/orders.graphql");
operation!(SetBillingCountry, "queries/orders.graphql");

operation!(WalletPage, "queries/wallet.graphql");
operation!(TopUpWallet, "queries/wallet.graphql");
operation!(TopUpStatus, "queries/wallet.graphql");

operation!(LibraryPage, "queries/library.graphql");

operation!(UnreadCount, "queries/notifications.graphql");
operation!(NotificationList, "queries/notifications.graphql");
operation!(MarkNotificationsRead, "queries/notifications.graphql");

operation!(OrderUpdated, "queries/orders.graphql");
operation!(NotificationReceived, "queries/notifications.graphql");

operation!(AdminAccounts, "queries/admin.graphql");
operation!(CreateAccount, "queries/admin.graphql");
operation!(SetAccountStatus, "queries/admin.graphql");
operation!(AdminProducts, "queries/admin.graphql");
operation!(ModerateProduct, "queries/admin.graphql");
operation!(DeadLetters, "queries/admin.graphql");
operation!(ReplayDeadLetter, "queries/admin.graphql");
operation!(AuditLog, "queries/admin.graphql");
operation!(BuyerSearch, "queries/admin.graphql");
operation!(Operations, "queries/admin.graphql");

operation!(MyProducts, "queries/publisher.graphql");
operation!(CreateProduct, "queries/publisher.graphql");
operation!(AddEdition, "queries/publisher.graphql");
operation!(PublishProduct, "queries/publisher.graphql");
operation!(SetStock, "queries/publisher.graphql");
operation!(StockCommand, "queries/publisher.graphql");
operation!(UpdateProduct, "queries/publisher.graphql");
operation!(UpdateEdition, "queries/publisher.graphql");
operation!(ScheduleDiscount, "queries/publisher.graphql");
operation!(EndDiscount, "queries/publisher.graphql");
operation!(SetEditionPrices, "queries/publisher.graphql");
operation!(UploadProductImage, "queries/publisher.graphql");
operation!(SalesFeed, "queries/publisher.graphql");
operation!(PendingShipments, "queries/publisher.graphql");
operation!(ShipOrder, "queries/publisher.graphql");
operation!(ShipmentsUpdated, "queries/publisher.graphql");
operation!(MyBundles, "queries/publisher.graphql");
operation!(CreateBundle, "queries/publisher.graphql");
operation!(PublishBundle, "queries/publisher.graphql");
operation!(ArchiveBundle, "queries/publisher.graphql");

operation!(ProductBuilds, "queries/delivery.graphql");
operation!(CreateBuild, "queries/delivery.graphql");
operation!(SetCurrentBuild, "queries/delivery.graphql");
operation!(DownloadLink, "queries/delivery.graphql");
operation!(GiftKeyEditions, "queries/delivery.graphql");
operation!(GiftKeyBatches, "queries/delivery.graphql");
operation!(GenerateGiftKeys, "queries/delivery.graphql");
operation!(RedeemKey, "queries/delivery.graphql");
operation!(RedeemedProduct, "queries/delivery.graphql");

operation!(WebhookEndpoints, "queries/webhooks.graphql");
operation!(WebhookDeliveries, "queries/webhooks.graphql");
operation!(CreateWebhookEndpoint, "queries/webhooks.graphql");
operation!(UpdateWebhookEndpoint, "queries/webhooks.graphql");
operation!(RotateWebhookSecret, "queries/webhooks.graphql");
operation!(DeleteWebhookEndpoint, "queries/webhooks.graphql");
operation!(RedeliverWebhook, "queries/webhooks.graphql");

operation!(OrderRefund, "queries/refunds.graphql");
operation!(RequestRefund, "queries/refunds.graphql");
operation!(RefundRequests, "queries/refunds.graphql");
operation!(RefundOrderSummary, "queries/refunds.graphql");
operation!(DecideRefund, "queries/refunds.graphql");

operation!(PublisherRevenue, "queries/revenue.graphql");

operation!(ApiClients, "queries/clients.graphql");
operation!(CreateApiClient, "queries/clients.graphql");
operation!(RevokeApiClient, "queries/clients.graphql");

operation!(AdminOrders, "queries/admin_orders.graphql");
operation!(AdminOrderTimeline, "queries/admin_orders.graphql");

/// A schema enum as `graphql_client` generates it for one operation (each operation has its own
/// copy of the type), read as the domain's enum, the one definition of its values. `None` for a
/// value this build of the app does not know yet (a newer api): pages then show a neutral word.
pub trait Domain {
    type Value;
    fn domain(&self) -> Option<Self::Value>;
}

/// Implements [`Domain`] for the generated `$gql` of each listed operation module, with one
/// mapping of its values. A value added to or removed from the schema breaks the build here.
macro_rules! domain_enum {
    ($gql:ident => $dom:ty { $($v:ident => $d:ident),+ $(,)? } in $($m:ident),+ $(,)?) => {
        domain_enum!(@each $gql, $dom; { $($v => $d),+ }; $($m)+);
    };
    (@each $gql:ident, $dom:ty; $map:tt; $($m:ident)+) => {
        $(domain_enum!(@one $m, $gql, $dom; $map);)+
    };
    (@one $m:ident, $gql:ident, $dom:ty; { $($v:ident => $d:ident),+ }) => {
        impl Domain for $m::$gql {
            type Value = $dom;
            fn domain(&self) -> Option<$dom> {
                match self {
                    $($m::$gql::$v => Some(<$dom>::$d),)+
                    $m::$gql::Other(_) => None,
                }
            }
        }
    };
}

domain_enum!(OrderStatus => domain::ordering::OrderStatus {
    PLACED => Placed,
    PAID => Paid,
    AWAITING_SHIPMENT => AwaitingShipment,
    COMPLETED => Completed,
    CANCELLED => Cancelled,
    REFUNDED => Refunded,
} in my_orders, order_page, order_refund, admin_orders, operations);

domain_enum!(DriftKind => domain::reconcile::DriftKind {
    CACHED_BALANCE => CachedBalance,
    WALLET_LEDGER => WalletLedger,
    MISSING_ENTITLEMENT => MissingEntitlement,
    UNPAID_ENTITLEMENT => UnpaidEntitlement,
    STOCK => Stock,
} in operations);

domain_enum!(OrderStep => domain::ordering::TimelineStep {
    PLACED => Placed,
    STOCK_RESERVED => StockReserved,
    STOCK_UNAVAILABLE => StockUnavailable,
    PAYMENT_CAPTURED => PaymentCaptured,
    PAYMENT_DECLINED => PaymentDeclined,
    ITEMS_GRANTED => ItemsGranted,
    READY_TO_SHIP => ReadyToShip,
    AWAITING_SHIPMENT => AwaitingShipment,
    SHIPPED => Shipped,
    PHYSICAL_ITEMS_GRANTED => PhysicalItemsGranted,
    PAYMENT_REFUNDED => PaymentRefunded,
    COMPLETED => Completed,
    CANCELLED => Cancelled,
    REFUND_REQUESTED => RefundRequested,
    REFUND_APPROVED => RefundApproved,
    REFUND_DENIED => RefundDenied,
    REFUNDED => Refunded,
} in order_page, admin_order_timeline);

domain_enum!(ShipmentStatus => domain::fulfillment::ShipmentStatus {
    RESERVED => Reserved,
    AWAITING_SHIPMENT => AwaitingShipment,
    SHIPPED => Shipped,
    RELEASED => Released,
} in order_page);

domain_enum!(EditionKind => domain::catalog::EditionKind {
    DIGITAL => Digital,
    PHYSICAL => Physical,
} in order_page, order_refund, admin_orders, my_products);

domain_enum!(ProductStatus => domain::catalog::ProductStatus {
    DRAFT => Draft,
    PUBLISHED => Published,
    UNLISTED => Unlisted,
} in my_products, admin_products);

domain_enum!(LedgerEntryKind => domain::billing::EntryKind {
    CREDIT => Credit,
    DEBIT => Debit,
    REFUND => Refund,
} in wallet_page);

domain_enum!(TopUpStatus => domain::billing::TopUpStatus {
    PENDING => Pending,
    CREDITED => Credited,
    DECLINED => Declined,
} in top_up_wallet, top_up_status);
