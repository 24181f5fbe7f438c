//! The workload: accounts and a catalog made through the api, then worker threads placing
//! digital, physical and mixed orders, concurrent replays of one idempotency key, unaffordable
//! orders, top-ups and stock additions, and following orders up (ship, cancel, a ship racing a
//! cancel, refunds, downloads, a download racing a refund). Every answer is written to the
//! [`Journal`] that the checks compare with the database.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::client::{Answer, Api, text};

/// How long a request is sent again while the api replicas are unreachable.
const PATIENCE: Duration = Duration::from_secs(60);
const CARD_OK: &str = "4242424242424242";
/// Fails twice with a transient error, then approves.
const CARD_FLAKY: &str = "4000000000000119";
const PASSWORD: &str = "chaos-password-1";
const DIGITAL_PRICE: i64 = 300;
const PHYSICAL_PRICE: i64 = 1500;
const PLATFORM: &str = "linux";
/// The delay between the later replays of one key.
const REPLAY_LAG: Duration = Duration::from_millis(400);
/// Top-up of a well-off buyer, and how many at the start.
const TOP_UP: i64 = 40_000;
const TOP_UPS_AT_START: usize = 4;
/// The one top-up of a poor buyer: less than any physical edition costs.
const POOR_TOP_UP: i64 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Clean,
    Faults,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKind {
    Digital,
    Physical,
    Mixed,
    /// A poor buyer's physical order: must be cancelled, nothing debited.
    Unaffordable,
}

pub struct Account {
    pub id: String,
    pub token: String,
}

pub struct Edition {
    pub id: String,
    pub publisher: usize,
}

/// What the api answered to a request whose outcome matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Refused(String),
    /// No definitive answer, or a refusal after an unanswered attempt (which may have worked).
    Unknown,
}

impl Outcome {
    fn of(answer: &Answer, unanswered: bool) -> Self {
        match answer {
            Answer::Data(_) => Outcome::Accepted,
            Answer::Refused { .. } if unanswered => Outcome::Unknown,
            Answer::Refused { code, .. } => Outcome::Refused(code.clone()),
            Answer::Unknown(_) => Outcome::Unknown,
        }
    }
}

/// An order the harness placed (the api answered with its id).
#[derive(Clone, Debug)]
pub struct Placed {
    pub id: String,
    pub buyer: usize,
    pub kind: OrderKind,
    pub at: SystemTime,
    pub phase: Phase,
}

/// Everything the harness did and was answered.
#[derive(Default)]
pub struct Journal {
    pub placed: Vec<Placed>,
    /// Per (buyer, idempotency key): every answer to `placeOrder` with that key and its one input.
    pub key_answers: HashMap<(usize, String), Vec<String>>,
    pub replay_groups: usize,
    pub ships: HashMap<String, Outcome>,
    pub cancels: HashMap<String, Outcome>,
    pub races: usize,
    pub refund_requests: HashMap<String, String>,
    pub denied: usize,
    pub downloads: usize,
    pub download_refund_races: usize,
    /// Per physical edition: the stock set at the start, the additions answered, and those
    /// whose answer was lost (they may or may not have been applied).
    pub stock_set: HashMap<String, i64>,
    pub stock_added: HashMap<String, i64>,
    pub stock_unknown: HashMap<String, i64>,
    /// Top-ups answered (their ids).
    pub top_ups: Vec<String>,
    /// Requests refused although the harness expected them to work (its own mistakes, or the
    /// store's): shown, not counted as invariants.
    pub surprises: Vec<String>,
    pub out_of_stock: usize,
    pub unanswered: usize,
}

/// The store as the workload sees it.
pub struct World {
    pub api: Api,
    pub admin: String,
    pub publishers: Vec<Account>,
    pub buyers: Vec<Account>,
    pub poor: Vec<usize>,
    pub digital: Vec<Edition>,
    pub physical: Vec<Edition>,
    /// Digital products each buyer has ordered (never ordered twice).
    claimed: Vec<Mutex<HashSet<usize>>>,
    follow_ups: Mutex<VecDeque<(Placed, Instant)>>,
    pub journal: Mutex<Journal>,
    seq: AtomicU64,
    pub run: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A small deterministic pseudo-random source per worker (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Sizes of the setup.
pub struct Size {
    pub publishers: usize,
    pub buyers: usize,
    pub poor: usize,
    pub digital: usize,
    pub physical: usize,
}

/// Signs in the admin, creates publishers, products (a digital edition with a current build
/// each; some with a physical edition too) and buyers with money.
pub fn setup(
    api: Api,
    admin_email: &str,
    admin_password: &str,
    size: &Size,
    run: &str,
) -> Result<World> {
    let sign_in = |email: &str, password: &str| -> Result<String> {
        let data = api.data(
            None,
            "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { accessToken } }",
            json!({ "e": email, "p": password }),
            PATIENCE,
        )?;
        text(&data, "/signIn/accessToken")
    };
    let admin = sign_in(admin_email, admin_password).context("admin sign-in")?;
    let mut publishers = Vec::new();
    for p in 0..size.publishers {
        let email = format!("pub{p}-{run}@chaos.test");
        let data = api.data(
            Some(&admin),
            "mutation($e: String!, $p: String!, $n: String!) { createAccount(input: {email: $e, password: $p, displayName: $n, role: PUBLISHER}) { id } }",
            json!({ "e": email, "p": PASSWORD, "n": format!("Chaos publisher {p}") }),
            PATIENCE,
        )?;
        publishers.push(Account {
            id: text(&data, "/createAccount/id")?,
            token: sign_in(&email, PASSWORD)?,
        });
    }
    let mut digital = Vec::new();
    let mut physical = Vec::new();
    for i in 0..size.digital {
        let publisher = i % publishers.len();
        let token = Some(publishers[publisher].token.as_str());
        let product = text(
            &api.data(
                token,
                "mutation($t: String!) { createProduct(input: {title: $t, genres: [\"indie\"], platforms: [\"linux\"]}) { id } }",
                json!({ "t": format!("Chaos {run} {i}") }),
                PATIENCE,
            )?,
            "/createProduct/id",
        )?;
        let edition = |kind: &str, price: i64, sku: String| -> Result<String> {
            text(
                &api.data(
                    token,
                    "mutation($p: UUID!, $k: EditionKind!, $s: String!, $a: Int!, $w: Int) { addEdition(productId: $p, input: {kind: $k, name: $s, sku: $s, price: {amountMinor: $a, currency: \"EUR\"}, weightGrams: $w}) { id } }",
                    json!({ "p": product, "k": kind, "s": sku, "a": price,
                            "w": (kind == "PHYSICAL").then_some(350) }),
                    PATIENCE,
                )?,
                "/addEdition/id",
            )
        };
        let d = edition(
            "DIGITAL",
            DIGITAL_PRICE + (i as i64 % 7) * 50,
            format!("CH-{i}-D"),
        )?;
        digital.push(Edition { id: d, publisher });
        if i < size.physical {
            let b = edition("PHYSICAL", PHYSICAL_PRICE, format!("CH-{i}-B"))?;
            physical.push(Edition { id: b, publisher });
        }
        api.data(
            token,
            "mutation($p: UUID!) { publishProduct(id: $p) { status } }",
            json!({ "p": product }),
            PATIENCE,
        )?;
        // A current build, so that owners can download.
        let file = format!("chaos build {i}\n");
        let build = text(
            &api.data(
                token,
                "mutation($p: UUID!, $s: Int!) { createBuild(input: {productId: $p, platform: \"linux\", versionLabel: \"1.0.0\", fileName: \"chaos.tar.gz\", sizeBytes: $s}) { id } }",
                json!({ "p": product, "s": file.len() }),
                PATIENCE,
            )?,
            "/createBuild/id",
        )?;
        api.put(
            &publishers[publisher].token,
            &format!("/uploads/builds/{build}"),
            file.as_bytes(),
            PATIENCE,
        )?;
        api.data(
            token,
            "mutation($b: UUID!) { setCurrentBuild(buildId: $b) { isCurrent } }",
            json!({ "b": build }),
            PATIENCE,
        )?;
    }
    let mut buyers = Vec::new();
    for b in 0..size.buyers + size.poor {
        let data = api.data(
            None,
            "mutation($e: String!, $p: String!, $n: String!) { signUp(input: {email: $e, password: $p, displayName: $n}) { accessToken account { id } } }",
            json!({ "e": format!("buyer{b}-{run}@chaos.test"), "p": PASSWORD, "n": format!("Buyer {b}") }),
            PATIENCE,
        )?;
        buyers.push(Account {
            id: text(&data, "/signUp/account/id")?,
            token: text(&data, "/signUp/accessToken")?,
        });
    }
    let world = World {
        api,
        admin,
        publishers,
        claimed: buyers.iter().map(|_| Mutex::default()).collect(),
        poor: (size.buyers..size.buyers + size.poor).collect(),
        buyers,
        digital,
        physical,
        follow_ups: Mutex::default(),
        journal: Mutex::default(),
        seq: AtomicU64::new(0),
        run: run.to_owned(),
    };
    // Stock: most editions plenty, a few scarce (out-of-stock refusals and cancellations).
    for (i, e) in world.physical.iter().enumerate() {
        let quantity = if i % 4 == 3 { 4 } else { 400 };
        world.set_stock(e, "SET", quantity)?;
    }
    for b in 0..world.buyers.len() {
        if world.poor.contains(&b) {
            world.top_up(b, POOR_TOP_UP, CARD_OK)?;
        } else {
            for _ in 0..TOP_UPS_AT_START {
                world.top_up(b, TOP_UP, CARD_OK)?;
            }
        }
    }
    Ok(world)
}

impl World {
    fn key(&self, what: &str) -> String {
        format!(
            "{what}-{}-{}",
            self.run,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn top_up(&self, buyer: usize, amount: i64, card: &str) -> Result<()> {
        let data = self.api_data(
            Some(&self.buyers[buyer].token),
            "mutation($a: Int!, $c: String!, $k: String!) { topUpWallet(amount: $a, paymentMethod: $c, idempotencyKey: $k) { id } }",
            json!({ "a": amount, "c": card, "k": self.key("topup") }),
        )?;
        lock(&self.journal)
            .top_ups
            .push(text(&data, "/topUpWallet/id")?);
        Ok(())
    }

    fn set_stock(&self, e: &Edition, mode: &str, quantity: i64) -> Result<()> {
        let data = self.api_data(
            Some(&self.publishers[e.publisher].token),
            "mutation($e: UUID!, $m: StockMode!, $q: Int!) { setStock(editionId: $e, mode: $m, quantity: $q) { commandId } }",
            json!({ "e": e.id, "m": mode, "q": quantity }),
        )?;
        text(&data, "/setStock/commandId")?;
        lock(&self.journal).stock_set.insert(e.id.clone(), quantity);
        Ok(())
    }

    fn api_data(&self, token: Option<&str>, query: &str, variables: Value) -> Result<Value> {
        self.api.data(token, query, variables, PATIENCE)
    }
}

/// The worker loop: until `stop`, place orders and follow them up.
pub fn worker(world: &World, seed: u64, phase: &Mutex<Phase>, stop: &AtomicBool) {
    let api = &world.api;
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        let phase = *lock(phase);
        let step = if rng.chance(40) {
            follow_up(world, api, &mut rng)
        } else {
            Ok(false)
        };
        let result = match step {
            Ok(true) => Ok(()),
            Ok(false) => act(world, api, &mut rng, phase),
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            let mut journal = lock(&world.journal);
            if journal.surprises.len() < 50 {
                journal.surprises.push(format!("{error:#}"));
            }
        }
    }
}

fn address() -> Value {
    json!({ "name": "Chaos Tester", "country": "DE", "city": "Berlin", "postalCode": "10115",
            "street": "Teststraße 1", "phone": "+49301234567" })
}

const PLACE: &str = "mutation($l: [OrderLineInput!]!, $a: ShippingAddressInput, $k: String!) { placeOrder(lines: $l, shippingAddress: $a, idempotencyKey: $k) { id } }";

/// One new thing: an order of some kind, a key replay, a top-up or a stock addition.
fn act(world: &World, api: &Api, rng: &mut Rng, phase: Phase) -> Result<()> {
    let roll = rng.below(100);
    let rich: Vec<usize> = (0..world.buyers.len())
        .filter(|b| !world.poor.contains(b))
        .collect();
    let buyer = rich[rng.below(rich.len())];
    match roll {
        0..=4 => {
            let card = if rng.chance(30) { CARD_FLAKY } else { CARD_OK };
            world.top_up(buyer, TOP_UP / 2, card)
        }
        5..=8 => {
            let e = &world.physical[rng.below(world.physical.len())];
            let q = 1 + rng.below(3) as i64;
            let answer = api.once(
                Some(&world.publishers[e.publisher].token),
                "mutation($e: UUID!, $q: Int!) { setStock(editionId: $e, mode: ADD, quantity: $q) { commandId } }",
                json!({ "e": e.id, "q": q }),
            );
            let mut journal = lock(&world.journal);
            match answer {
                Answer::Data(_) => *journal.stock_added.entry(e.id.clone()).or_default() += q,
                Answer::Unknown(_) => *journal.stock_unknown.entry(e.id.clone()).or_default() += q,
                Answer::Refused { code, message } => journal
                    .surprises
                    .push(format!("setStock ADD: {code}: {message}")),
            }
            Ok(())
        }
        9..=13 => {
            let poor = world.poor[rng.below(world.poor.len())];
            let e = &world.physical[rng.below(world.physical.len())];
            let lines = json!([{ "editionId": e.id, "quantity": 1 }]);
            place(
                world,
                api,
                poor,
                OrderKind::Unaffordable,
                lines,
                Some(address()),
                phase,
                1,
            );
            Ok(())
        }
        14..=23 => {
            // Concurrent replays of one key with one input (a digital order).
            let Some(lines) = digital_lines(world, buyer, rng, 1) else {
                return physical_order(world, api, rng, buyer, phase);
            };
            lock(&world.journal).replay_groups += 1;
            place(world, api, buyer, OrderKind::Digital, lines, None, phase, 4);
            Ok(())
        }
        24..=43 => physical_order(world, api, rng, buyer, phase),
        44..=58 => {
            let e = &world.physical[rng.below(world.physical.len())];
            let Some(mut lines) = digital_lines(world, buyer, rng, 1) else {
                return physical_order(world, api, rng, buyer, phase);
            };
            if let Some(array) = lines.as_array_mut() {
                array.push(json!({ "editionId": e.id, "quantity": 1 }));
            }
            place(
                world,
                api,
                buyer,
                OrderKind::Mixed,
                lines,
                Some(address()),
                phase,
                1,
            );
            Ok(())
        }
        _ => {
            let n = 1 + rng.below(3);
            let Some(lines) = digital_lines(world, buyer, rng, n) else {
                return physical_order(world, api, rng, buyer, phase);
            };
            place(world, api, buyer, OrderKind::Digital, lines, None, phase, 1);
            Ok(())
        }
    }
}

/// An order of one physical edition (1 or 2 copies).
fn physical_order(
    world: &World,
    api: &Api,
    rng: &mut Rng,
    buyer: usize,
    phase: Phase,
) -> Result<()> {
    let e = &world.physical[rng.below(world.physical.len())];
    let lines = json!([{ "editionId": e.id, "quantity": 1 + rng.below(2) }]);
    place(
        world,
        api,
        buyer,
        OrderKind::Physical,
        lines,
        Some(address()),
        phase,
        1,
    );
    Ok(())
}

/// `n` digital editions the buyer never ordered (claimed now), as order lines.
fn digital_lines(world: &World, buyer: usize, rng: &mut Rng, n: usize) -> Option<Value> {
    let mut claimed = lock(&world.claimed[buyer]);
    let free: Vec<usize> = (0..world.digital.len())
        .filter(|i| !claimed.contains(i))
        .collect();
    if free.is_empty() {
        return None;
    }
    let start = rng.below(free.len());
    let picked: Vec<usize> = free
        .iter()
        .cycle()
        .skip(start)
        .take(n.min(free.len()))
        .copied()
        .collect();
    claimed.extend(&picked);
    Some(Value::Array(
        picked
            .iter()
            .map(|&i| json!({ "editionId": world.digital[i].id, "quantity": 1 }))
            .collect(),
    ))
}

/// Places one order with a fresh key, sent by `copies` clients (the first two at the same
/// instant, the others [`REPLAY_LAG`] apart; each sending again until answered); journals
/// every answer.
#[expect(clippy::too_many_arguments, reason = "one call site per order kind")]
fn place(
    world: &World,
    api: &Api,
    buyer: usize,
    kind: OrderKind,
    lines: Value,
    address: Option<Value>,
    phase: Phase,
    copies: usize,
) {
    let key = world.key("order");
    let variables = json!({ "l": lines, "a": address, "k": key });
    let token = world.buyers[buyer].token.as_str();
    let at = SystemTime::now();
    let barrier = Barrier::new(copies);
    let answers: Vec<(Answer, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..copies)
            .map(|copy| {
                let (barrier, variables) = (&barrier, &variables);
                s.spawn(move || {
                    barrier.wait();
                    // Two at the same instant, the others a moment later (while the saga
                    // stores the order).
                    sleep(REPLAY_LAG * u32::try_from(copy.saturating_sub(1)).unwrap_or(0));
                    api.retry(Some(token), PLACE, variables, PATIENCE)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut journal = lock(&world.journal);
    let mut id = None;
    for (answer, unanswered) in &answers {
        if *unanswered {
            journal.unanswered += 1;
        }
        let shown = match answer {
            Answer::Data(data) => {
                let got = data.pointer("/placeOrder/id").and_then(Value::as_str);
                id = id.or(got.map(str::to_owned));
                format!("order {}", got.unwrap_or("?"))
            }
            Answer::Refused { code, message } => format!("{code}: {message}"),
            Answer::Unknown(why) => format!("no answer: {why}"),
        };
        journal
            .key_answers
            .entry((buyer, key.clone()))
            .or_default()
            .push(shown);
    }
    if answers
        .iter()
        .all(|(a, _)| a.code() == Some("OUT_OF_STOCK"))
    {
        journal.out_of_stock += 1;
    }
    if let Some(id) = id {
        let placed = Placed {
            id,
            buyer,
            kind,
            at,
            phase,
        };
        journal.placed.push(placed.clone());
        drop(journal);
        lock(&world.follow_ups).push_back((placed, Instant::now()));
    }
}

const STATUS: &str = "query($o: UUID!) { order(id: $o) { status } }";

/// Takes one placed order whose saga has had a moment, and acts on it by its status: ships,
/// cancels or races the two (awaiting shipment); asks for a refund, downloads first, or races
/// a download with the refund (completed digital orders). `false` when there was nothing to do.
fn follow_up(world: &World, api: &Api, rng: &mut Rng) -> Result<bool> {
    let next = {
        let mut queue = lock(&world.follow_ups);
        match queue.front() {
            Some((_, since)) if since.elapsed() >= Duration::from_millis(800) => queue.pop_front(),
            _ => None,
        }
    };
    let Some((placed, since)) = next else {
        return Ok(false);
    };
    if placed.kind == OrderKind::Unaffordable {
        return Ok(true);
    }
    let buyer = &world.buyers[placed.buyer];
    let status = match api.once(Some(&buyer.token), STATUS, json!({ "o": placed.id })) {
        Answer::Data(data) => data
            .pointer("/order/status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        _ => String::new(),
    };
    match status.as_str() {
        "AWAITING_SHIPMENT" => awaiting(world, api, rng, &placed),
        "COMPLETED" if placed.kind == OrderKind::Digital => completed(world, api, rng, &placed),
        "COMPLETED" | "CANCELLED" | "REFUNDED" => {}
        // Not settled yet (or no answer): look again later, for a while.
        _ if since.elapsed() < Duration::from_secs(120) => {
            lock(&world.follow_ups).push_back((placed, Instant::now()));
        }
        _ => {}
    }
    Ok(true)
}

/// The order's lines: (edition, product, physical).
fn lines_of(api: &Api, token: &str, order: &str) -> Vec<(String, String, bool)> {
    let query = "query($o: UUID!) { order(id: $o) { lines { editionId productId kind } } }";
    let Answer::Data(data) = api.once(Some(token), query, json!({ "o": order })) else {
        return Vec::new();
    };
    data.pointer("/order/lines")
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    Some((
                        l.get("editionId")?.as_str()?.to_owned(),
                        l.get("productId")?.as_str()?.to_owned(),
                        l.get("kind")?.as_str()? == "PHYSICAL",
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn awaiting(world: &World, api: &Api, rng: &mut Rng, placed: &Placed) {
    let buyer = &world.buyers[placed.buyer];
    let lines = lines_of(api, &buyer.token, &placed.id);
    let Some(publisher) = lines
        .iter()
        .find(|(_, _, physical)| *physical)
        .and_then(|(edition, _, _)| world.physical.iter().find(|e| &e.id == edition))
        .map(|e| e.publisher)
    else {
        return;
    };
    let ship = || {
        api.retry(
            Some(&world.publishers[publisher].token),
            "mutation($o: UUID!, $t: String!) { shipOrder(orderId: $o, carrier: \"DHL\", trackingNumber: $t) { id } }",
            &json!({ "o": placed.id, "t": format!("TRK{}", rng_free_tag(&placed.id)) }),
            PATIENCE,
        )
    };
    let cancel = || {
        api.retry(
            Some(&buyer.token),
            "mutation($o: UUID!) { cancelOrder(orderId: $o) { id } }",
            &json!({ "o": placed.id }),
            PATIENCE,
        )
    };
    let roll = rng.below(100);
    if placed.kind == OrderKind::Mixed && roll < 50 {
        // Download the digital line first, then cancel: the downloaded copy is kept.
        if let Some((_, product, _)) = lines.iter().find(|(_, _, physical)| !physical) {
            download(world, api, &buyer.token, product);
        }
        let (answer, unanswered) = cancel();
        lock(&world.journal)
            .cancels
            .insert(placed.id.clone(), Outcome::of(&answer, unanswered));
    } else if roll < 70 {
        let (answer, unanswered) = ship();
        lock(&world.journal)
            .ships
            .insert(placed.id.clone(), Outcome::of(&answer, unanswered));
    } else if roll < 85 {
        let (answer, unanswered) = cancel();
        lock(&world.journal)
            .cancels
            .insert(placed.id.clone(), Outcome::of(&answer, unanswered));
    } else {
        // A ship racing a cancel: one of them wins.
        let barrier = Barrier::new(2);
        let (shipped, cancelled) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                barrier.wait();
                ship()
            });
            let b = s.spawn(|| {
                barrier.wait();
                cancel()
            });
            (a.join().ok(), b.join().ok())
        });
        let mut journal = lock(&world.journal);
        journal.races += 1;
        if let Some((answer, unanswered)) = shipped {
            journal
                .ships
                .insert(placed.id.clone(), Outcome::of(&answer, unanswered));
        }
        if let Some((answer, unanswered)) = cancelled {
            journal
                .cancels
                .insert(placed.id.clone(), Outcome::of(&answer, unanswered));
        }
    }
}

/// A tracking number of an order (its id's last characters).
fn rng_free_tag(order: &str) -> String {
    order.chars().rev().take(10).collect()
}

fn download(world: &World, api: &Api, token: &str, product: &str) -> bool {
    let (answer, _) = api.retry(
        Some(token),
        "mutation($p: UUID!, $f: String!) { downloadLink(productId: $p, platform: $f) { url } }",
        &json!({ "p": product, "f": PLATFORM }),
        PATIENCE,
    );
    let ok = matches!(answer, Answer::Data(_));
    if ok {
        lock(&world.journal).downloads += 1;
    }
    ok
}

fn completed(world: &World, api: &Api, rng: &mut Rng, placed: &Placed) {
    let buyer = &world.buyers[placed.buyer];
    let refund = || {
        api.retry(
            Some(&buyer.token),
            "mutation($o: UUID!) { requestRefund(orderId: $o, reason: \"chaos\") { status } }",
            &json!({ "o": placed.id }),
            PATIENCE,
        )
    };
    let record = |answer: &Answer| {
        if let Answer::Data(data) = answer {
            let status = data
                .pointer("/requestRefund/status")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            lock(&world.journal)
                .refund_requests
                .insert(placed.id.clone(), status);
        }
    };
    let roll = rng.below(100);
    if roll < 35 {
        record(&refund().0);
    } else if roll < 55 {
        // Downloaded, then asked: out of policy, an admin denies it.
        let lines = lines_of(api, &buyer.token, &placed.id);
        if let Some((_, product, _)) = lines.first() {
            download(world, api, &buyer.token, product);
        }
        let (answer, _) = refund();
        record(&answer);
        if let Answer::Data(data) = &answer
            && data
                .pointer("/requestRefund/status")
                .and_then(Value::as_str)
                == Some("PENDING_REVIEW")
        {
            let (decided, _) = api.retry(
                Some(&world.admin),
                "mutation($o: UUID!) { decideRefund(orderId: $o, approve: false, note: \"downloaded\") { status } }",
                &json!({ "o": placed.id }),
                PATIENCE,
            );
            if matches!(decided, Answer::Data(_)) {
                lock(&world.journal).denied += 1;
            }
        }
    } else if roll < 70 {
        // A download racing a refund request: never both a download and a refund.
        let lines = lines_of(api, &buyer.token, &placed.id);
        let Some((_, product, _)) = lines.first() else {
            return;
        };
        let barrier = Barrier::new(2);
        let answer = std::thread::scope(|s| {
            let d = s.spawn(|| {
                barrier.wait();
                download(world, api, &buyer.token, product);
            });
            let r = s.spawn(|| {
                barrier.wait();
                refund()
            });
            let _ = d.join();
            r.join().ok()
        });
        lock(&world.journal).download_refund_races += 1;
        if let Some((answer, _)) = answer {
            record(&answer);
        }
    } else if roll < 85 {
        let lines = lines_of(api, &buyer.token, &placed.id);
        if let Some((_, product, _)) = lines.first() {
            download(world, api, &buyer.token, product);
        }
    }
}

/// Sleeps in small steps until `stop` or `duration` passes.
pub fn pause(duration: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        sleep(Duration::from_millis(100));
    }
}
