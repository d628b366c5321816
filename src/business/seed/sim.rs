//! The day-by-day simulation behind `stockops seed`.
//!
//! Everything random comes from one ChaCha stream seeded by `--rng-seed`,
//! consumed in a fixed order, so the output is a pure function of the options.
//! Rows are flushed with COPY at the end of every simulated month in
//! dependency order (purchase orders, sales, then the movements that refer to
//! them), which keeps memory flat whatever the scale.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgConnection;

use super::catalog::{self, CATEGORIES, REGIONS, REGION_WAREHOUSE, WAREHOUSES};
use super::copy::CopyBuffer;
use super::SeedOptions;

const DAYS: i64 = 365;
/// Orders a day at scale 1 on an ordinary weekday.
const BASE_ORDERS: f64 = 300.0;

struct Product {
    category: usize,
    price: i64,
    reorder_point: i32,
    reorder_qty: i32,
    supplier: usize,
}

struct Supplier {
    lead_days: i64,
    /// Probability a delivery is on time or early.
    reliability: f64,
    /// Probability a delivery is complete at once.
    fill: f64,
}

/// A delivery due on some day.
struct Arrival {
    po_id: i64,
    product: usize,
    warehouse: usize,
    qty: i32,
}

struct Return {
    sales_order_id: i64,
    product: usize,
    warehouse: usize,
    qty: i32,
}

/// Pending rows, one buffer per table.
struct Out {
    regions: CopyBuffer,
    warehouses: CopyBuffer,
    suppliers: CopyBuffer,
    products: CopyBuffer,
    resellers: CopyBuffer,
    pos: CopyBuffer,
    po_lines: CopyBuffer,
    orders: CopyBuffer,
    order_lines: CopyBuffer,
    movements: CopyBuffer,
}

impl Out {
    fn new() -> Self {
        Self {
            regions: CopyBuffer::new("inventory.regions", "region_id, code, name"),
            warehouses: CopyBuffer::new("inventory.warehouses", "warehouse_id, code, name, region_id"),
            suppliers: CopyBuffer::new(
                "inventory.suppliers",
                "supplier_id, code, name, contact_name, contact_email, lead_time_days",
            ),
            products: CopyBuffer::new(
                "inventory.products",
                "product_id, sku, name, category, unit_cost, list_price, reorder_point, reorder_quantity, preferred_supplier_id, active",
            ),
            resellers: CopyBuffer::new("inventory.resellers", "reseller_id, code, name, region_id, contact_email"),
            pos: CopyBuffer::new(
                "inventory.purchase_orders",
                "purchase_order_id, po_number, supplier_id, warehouse_id, status, created_at, sent_at, confirmed_at, expected_date, received_at, cancelled_at, cancel_reason",
            ),
            po_lines: CopyBuffer::new(
                "inventory.purchase_order_lines",
                "purchase_order_id, line_no, product_id, quantity_ordered, quantity_received, unit_cost",
            ),
            orders: CopyBuffer::new(
                "inventory.sales_orders",
                "sales_order_id, order_number, reseller_id, warehouse_id, ordered_at, status, source",
            ),
            order_lines: CopyBuffer::new(
                "inventory.sales_order_lines",
                "sales_order_id, line_no, product_id, quantity, unit_price",
            ),
            movements: CopyBuffer::new(
                "inventory.stock_movements",
                "product_id, warehouse_id, kind, quantity, reason, purchase_order_id, sales_order_id, transfer_ref, occurred_at, actor",
            ),
        }
    }

    /// Flush in dependency order.
    async fn flush(&mut self, conn: &mut PgConnection) -> anyhow::Result<()> {
        for b in [
            &mut self.regions,
            &mut self.warehouses,
            &mut self.suppliers,
            &mut self.products,
            &mut self.resellers,
            &mut self.pos,
            &mut self.po_lines,
            &mut self.orders,
            &mut self.order_lines,
            &mut self.movements,
        ] {
            b.flush(conn).await?;
        }
        Ok(())
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        [
            ("regions", &self.regions),
            ("warehouses", &self.warehouses),
            ("suppliers", &self.suppliers),
            ("products", &self.products),
            ("resellers", &self.resellers),
            ("purchase_orders", &self.pos),
            ("purchase_order_lines", &self.po_lines),
            ("sales_orders", &self.orders),
            ("sales_order_lines", &self.order_lines),
            ("stock_movements", &self.movements),
        ]
        .into_iter()
        .map(|(n, b)| (n.to_string(), b.rows))
        .collect()
    }
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S+00").to_string()
}

fn at(day: NaiveDate, hour: u32, minute: u32) -> NaiveDateTime {
    day.and_time(NaiveTime::from_hms_opt(hour, minute, 0).expect("valid time"))
}

/// Cumulative weights for sampling by binary search.
struct Sampler {
    cumulative: Vec<f64>,
}

impl Sampler {
    /// Zipf-like weights 1/rank^s over a shuffled order of `n` items.
    fn zipf(rng: &mut ChaCha8Rng, n: usize, s: f64) -> (Self, Vec<f64>) {
        let mut ranks: Vec<usize> = (1..=n).collect();
        for i in (1..n).rev() {
            let j = rng.gen_range(0..=i);
            ranks.swap(i, j);
        }
        let weights: Vec<f64> = ranks.iter().map(|r| 1.0 / (*r as f64).powf(s)).collect();
        (Self::new(&weights), weights)
    }

    fn new(weights: &[f64]) -> Self {
        let mut total = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Self { cumulative }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let x = rng.gen::<f64>() * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.cumulative.len() - 1)
    }
}

pub struct Simulation {
    rng: ChaCha8Rng,
    scale: f64,
    start: NaiveDate,
    as_of: NaiveDate,
    products: Vec<Product>,
    suppliers: Vec<Supplier>,
    reseller_region: Vec<usize>,
    product_sampler: Option<Sampler>,
    reseller_sampler: Option<Sampler>,
    by_category: Vec<Vec<usize>>,
    /// [product * warehouses + warehouse]
    level: Vec<i32>,
    on_order: Vec<i32>,
    arrivals: BTreeMap<NaiveDate, Vec<Arrival>>,
    returns: BTreeMap<NaiveDate, Vec<Return>>,
    next_po: i64,
    next_order: i64,
    next_transfer: i64,
    out: Out,
}

impl Simulation {
    pub fn new(opts: &SeedOptions) -> Self {
        let n_products = ((2000.0 * opts.scale).round() as usize).max(30);
        Self {
            rng: ChaCha8Rng::seed_from_u64(opts.rng_seed),
            scale: opts.scale,
            start: opts.as_of - Duration::days(DAYS),
            as_of: opts.as_of,
            products: Vec::with_capacity(n_products),
            suppliers: Vec::new(),
            reseller_region: Vec::new(),
            product_sampler: None,
            reseller_sampler: None,
            by_category: vec![Vec::new(); CATEGORIES.len()],
            level: vec![0; n_products * WAREHOUSES.len()],
            on_order: vec![0; n_products * WAREHOUSES.len()],
            arrivals: BTreeMap::new(),
            returns: BTreeMap::new(),
            next_po: 1,
            next_order: 1,
            next_transfer: 1,
            out: Out::new(),
        }
    }

    /// Generate and load everything; returns rows per table.
    pub async fn run(mut self, conn: &mut PgConnection) -> anyhow::Result<BTreeMap<String, u64>> {
        self.reference_data();
        self.opening_stock();
        self.out.flush(conn).await?;
        let mut month = self.start.month();
        for d in 0..DAYS {
            let day = self.start + Duration::days(d);
            if day.month() != month {
                self.out.flush(conn).await?;
                month = day.month();
            }
            self.simulate_day(day);
        }
        self.out.flush(conn).await?;
        Ok(self.out.counts())
    }

    fn reference_data(&mut self) {
        for (i, (code, name)) in REGIONS.iter().enumerate() {
            self.out
                .regions
                .row()
                .int(i as i64 + 1)
                .text(code)
                .text(name);
        }
        for (i, (code, name, region)) in WAREHOUSES.iter().enumerate() {
            self.out
                .warehouses
                .row()
                .int(i as i64 + 1)
                .text(code)
                .text(name)
                .int(*region as i64 + 1);
        }
        self.suppliers_and_products();
        self.resellers();
    }

    fn suppliers_and_products(&mut self) {
        let n_suppliers = ((50.0 * self.scale).round() as usize).clamp(5, 500);
        for i in 0..n_suppliers {
            let rng = &mut self.rng;
            let word = catalog::SUPPLIER_WORDS[rng.gen_range(0..catalog::SUPPLIER_WORDS.len())];
            let kind = catalog::SUPPLIER_KINDS[rng.gen_range(0..catalog::SUPPLIER_KINDS.len())];
            let lead = rng.gen_range(3..=28);
            let supplier = Supplier {
                lead_days: lead,
                reliability: rng.gen_range(0.55..0.98),
                fill: rng.gen_range(0.80..0.99),
            };
            let code = format!("SUP-{:03}", i + 1);
            let name = format!("{word} {kind} {}", i + 1);
            let email = format!("orders@sup{:03}.example.com", i + 1);
            self.out
                .suppliers
                .row()
                .int(i as i64 + 1)
                .text(&code)
                .text(&name)
                .text("Service commandes")
                .text(&email)
                .int(lead);
            self.suppliers.push(supplier);
        }
        let n = self.level.len() / WAREHOUSES.len();
        let (sampler, weights) = Sampler::zipf(&mut self.rng, n, 0.9);
        let total_weight: f64 = weights.iter().sum();
        // Expected units a day per product and warehouse, to size reorder points.
        let units_per_day = BASE_ORDERS * self.scale * 5.0 * 3.5 / WAREHOUSES.len() as f64;
        for (i, weight) in weights.iter().enumerate() {
            let rng = &mut self.rng;
            let category = rng.gen_range(0..CATEGORIES.len());
            let cat = &CATEGORIES[category];
            let price = (rng.gen_range(cat.price.0..cat.price.1) * 100.0).round() as i64;
            let cost = (price as f64 * rng.gen_range(0.62..0.86)).round() as i64;
            let supplier = rng.gen_range(0..self.suppliers.len());
            let lead = self.suppliers[supplier].lead_days as f64;
            let daily = units_per_day * weight / total_weight;
            let reorder_point = (daily * (lead + 5.0)).ceil().max(2.0) as i32;
            let reorder_qty = (daily * 21.0).ceil().max(5.0) as i32;
            let brand = catalog::BRANDS[rng.gen_range(0..catalog::BRANDS.len())];
            let model = cat.models[rng.gen_range(0..cat.models.len())];
            let sku = format!("{}-{:06}", cat.prefix, i + 1);
            let name = format!("{brand} {model} {}", rng.gen_range(100..999));
            let active = rng.gen_bool(0.97);
            self.out
                .products
                .row()
                .int(i as i64 + 1)
                .text(&sku)
                .text(&name)
                .text(cat.name)
                .cents(cost)
                .cents(price)
                .int(reorder_point as i64)
                .int(reorder_qty as i64)
                .int(supplier as i64 + 1)
                .bool(active);
            self.by_category[category].push(i);
            self.products.push(Product {
                category,
                price,
                reorder_point,
                reorder_qty,
                supplier,
            });
        }
        self.product_sampler = Some(sampler);
    }

    fn resellers(&mut self) {
        let n = ((120.0 * self.scale).round() as usize).max(8);
        for i in 0..n {
            let rng = &mut self.rng;
            let region = rng.gen_range(0..REGIONS.len());
            let word = catalog::RESELLER_WORDS[rng.gen_range(0..catalog::RESELLER_WORDS.len())];
            let town = catalog::TOWNS[rng.gen_range(0..catalog::TOWNS.len())];
            let code = format!("RES-{:04}", i + 1);
            let name = format!("{word} {town} {}", i + 1);
            let email = format!("achats@res{:04}.example.com", i + 1);
            self.out
                .resellers
                .row()
                .int(i as i64 + 1)
                .text(&code)
                .text(&name)
                .int(region as i64 + 1)
                .text(&email);
            self.reseller_region.push(region);
        }
        self.reseller_sampler = Some(Sampler::zipf(&mut self.rng, n, 0.7).0);
    }

    fn opening_stock(&mut self) {
        let when = ts(at(self.start, 6, 0));
        for p in 0..self.products.len() {
            for w in 0..WAREHOUSES.len() {
                let rp = self.products[p].reorder_point;
                let qty = rp * 2 + self.rng.gen_range(0..=rp.max(1));
                self.level[p * WAREHOUSES.len() + w] = qty;
                self.movement(
                    p,
                    w,
                    "adjustment",
                    qty,
                    Some("opening stock count"),
                    None,
                    None,
                    None,
                    &when,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn movement(
        &mut self,
        product: usize,
        warehouse: usize,
        kind: &str,
        qty: i32,
        reason: Option<&str>,
        po: Option<i64>,
        order: Option<i64>,
        transfer: Option<i64>,
        when: &str,
    ) {
        self.out
            .movements
            .row()
            .int(product as i64 + 1)
            .int(warehouse as i64 + 1)
            .text(kind)
            .int(qty as i64)
            .opt_text(reason)
            .opt_int(po)
            .opt_int(order)
            .opt_int(transfer)
            .text(when)
            .text("stockops_seed");
    }

    fn demand_factor(&self, day: NaiveDate) -> f64 {
        let weekday = match day.weekday() {
            Weekday::Mon => 1.10,
            Weekday::Tue => 1.15,
            Weekday::Wed => 1.10,
            Weekday::Thu => 1.05,
            Weekday::Fri => 1.00,
            Weekday::Sat => 0.40,
            Weekday::Sun => 0.12,
        };
        let season = match day.month() {
            8 => 0.70,
            9 => 1.15,
            11 => 1.35,
            12 => 1.25,
            1 => 0.90,
            _ => 1.0,
        };
        let progress = (day - self.start).num_days() as f64 / DAYS as f64;
        let trend = 0.88 + 0.24 * progress;
        weekday * season * trend
    }

    fn simulate_day(&mut self, day: NaiveDate) {
        let touched = self.deliveries(day);
        let mut touched = touched;
        self.process_returns(day, &mut touched);
        self.sales(day, &mut touched);
        self.adjustments(day, &mut touched);
        self.transfers(day, &mut touched);
        self.reorder(day, touched);
    }

    fn deliveries(&mut self, day: NaiveDate) -> Vec<usize> {
        let mut touched = Vec::new();
        let Some(arrivals) = self.arrivals.remove(&day) else {
            return touched;
        };
        for a in arrivals {
            let slot = a.product * WAREHOUSES.len() + a.warehouse;
            self.level[slot] += a.qty;
            self.on_order[slot] -= a.qty;
            let when = ts(at(
                day,
                7 + self.rng.gen_range(0..9),
                self.rng.gen_range(0..60),
            ));
            self.movement(
                a.product,
                a.warehouse,
                "receipt",
                a.qty,
                None,
                Some(a.po_id),
                None,
                None,
                &when,
            );
            touched.push(slot);
        }
        touched
    }

    fn process_returns(&mut self, day: NaiveDate, touched: &mut Vec<usize>) {
        let Some(returns) = self.returns.remove(&day) else {
            return;
        };
        for r in returns {
            let slot = r.product * WAREHOUSES.len() + r.warehouse;
            self.level[slot] += r.qty;
            let when = ts(at(day, 10, self.rng.gen_range(0..60)));
            self.movement(
                r.product,
                r.warehouse,
                "return",
                r.qty,
                Some("returned by reseller"),
                None,
                Some(r.sales_order_id),
                None,
                &when,
            );
            touched.push(slot);
        }
    }

    fn sales(&mut self, day: NaiveDate, touched: &mut Vec<usize>) {
        let expected = BASE_ORDERS * self.scale * self.demand_factor(day);
        let n_orders = (expected * self.rng.gen_range(0.85..1.15)).round() as usize;
        let promo = (day.ordinal0() / 7 * 7 + 3) as usize % CATEGORIES.len();
        for _ in 0..n_orders {
            self.one_order(day, promo, touched);
        }
    }

    fn one_order(&mut self, day: NaiveDate, promo: usize, touched: &mut Vec<usize>) {
        let reseller = self
            .reseller_sampler
            .as_ref()
            .expect("set")
            .pick(&mut self.rng);
        let warehouse = REGION_WAREHOUSE[self.reseller_region[reseller]];
        let n_lines = 1 + (self.rng.gen::<f64>().powf(1.5) * 11.0) as usize;
        let order_id = self.next_order;
        let mut lines: Vec<(usize, i32, i64)> = Vec::with_capacity(n_lines);
        for _ in 0..n_lines {
            let product = if self.rng.gen_bool(0.15) && !self.by_category[promo].is_empty() {
                let list = &self.by_category[promo];
                list[self.rng.gen_range(0..list.len())]
            } else {
                self.product_sampler
                    .as_ref()
                    .expect("set")
                    .pick(&mut self.rng)
            };
            if lines.iter().any(|(p, _, _)| *p == product) {
                continue;
            }
            let p = &self.products[product];
            let max = CATEGORIES[p.category].max_qty as f64;
            let wanted = 1 + (self.rng.gen::<f64>().powi(3) * max) as i32;
            let slot = product * WAREHOUSES.len() + warehouse;
            let qty = wanted.min(self.level[slot]);
            if qty == 0 {
                continue;
            }
            let discount = if p.category == promo {
                self.rng.gen_range(0.15..0.25)
            } else {
                self.rng.gen_range(0.0..0.12)
            };
            let price = (p.price as f64 * (1.0 - discount)).round() as i64;
            self.level[slot] -= qty;
            touched.push(slot);
            lines.push((product, qty, price));
        }
        if lines.is_empty() {
            return;
        }
        self.next_order += 1;
        let when = ts(at(
            day,
            8 + self.rng.gen_range(0..10),
            self.rng.gen_range(0..60),
        ));
        let number = format!("SO-{}-{:07}", day.year(), order_id);
        self.out
            .orders
            .row()
            .int(order_id)
            .text(&number)
            .int(reseller as i64 + 1)
            .int(warehouse as i64 + 1)
            .text(&when)
            .text("fulfilled")
            .text("seed");
        for (i, (product, qty, price)) in lines.into_iter().enumerate() {
            self.out
                .order_lines
                .row()
                .int(order_id)
                .int(i as i64 + 1)
                .int(product as i64 + 1)
                .int(qty as i64)
                .cents(price);
            self.movement(
                product,
                warehouse,
                "sale",
                -qty,
                None,
                None,
                Some(order_id),
                None,
                &when,
            );
            if self.rng.gen_bool(0.01) {
                let back = day + Duration::days(self.rng.gen_range(2..20));
                if back < self.as_of {
                    self.returns.entry(back).or_default().push(Return {
                        sales_order_id: order_id,
                        product,
                        warehouse,
                        qty: 1,
                    });
                }
            }
        }
    }

    fn adjustments(&mut self, day: NaiveDate, touched: &mut Vec<usize>) {
        let n =
            (self.products.len() as f64 * 0.002 * self.rng.gen_range(0.5..1.5)).round() as usize;
        for _ in 0..n {
            let slot = self.rng.gen_range(0..self.level.len());
            let delta = if self.rng.gen_bool(0.8) {
                -self.rng.gen_range(1..=3)
            } else {
                self.rng.gen_range(1..=3)
            };
            if self.level[slot] + delta < 0 {
                continue;
            }
            self.level[slot] += delta;
            let reason = catalog::ADJUSTMENT_REASONS
                [self.rng.gen_range(0..catalog::ADJUSTMENT_REASONS.len())];
            let when = ts(at(day, 17, self.rng.gen_range(0..60)));
            let (p, w) = (slot / WAREHOUSES.len(), slot % WAREHOUSES.len());
            self.movement(
                p,
                w,
                "adjustment",
                delta,
                Some(reason),
                None,
                None,
                None,
                &when,
            );
            touched.push(slot);
        }
    }

    /// Rebalance a few empty shelves from the fullest warehouse.
    fn transfers(&mut self, day: NaiveDate, touched: &mut Vec<usize>) {
        let candidates: Vec<usize> = touched
            .iter()
            .copied()
            .filter(|s| self.level[*s] == 0)
            .take(5)
            .collect();
        for slot in candidates {
            let p = slot / WAREHOUSES.len();
            let base = p * WAREHOUSES.len();
            let (from, have) = (0..WAREHOUSES.len())
                .map(|w| (w, self.level[base + w]))
                .max_by_key(|(_, l)| *l)
                .expect("warehouses");
            let rp = self.products[p].reorder_point;
            if have <= rp * 2 {
                continue;
            }
            let qty = (have - rp * 2).min(rp.max(1));
            let to = slot % WAREHOUSES.len();
            self.level[base + from] -= qty;
            self.level[slot] += qty;
            let reference = self.next_transfer;
            self.next_transfer += 1;
            let when = ts(at(day, 16, 0));
            self.movement(
                p,
                from,
                "transfer_out",
                -qty,
                None,
                None,
                None,
                Some(reference),
                &when,
            );
            self.movement(
                p,
                to,
                "transfer_in",
                qty,
                None,
                None,
                None,
                Some(reference),
                &when,
            );
            touched.push(base + from);
        }
    }

    /// Order what fell to its reorder point, one purchase order per supplier and warehouse.
    fn reorder(&mut self, day: NaiveDate, mut touched: Vec<usize>) {
        touched.sort_unstable();
        touched.dedup();
        let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for slot in touched {
            let p = &self.products[slot / WAREHOUSES.len()];
            if self.level[slot] + self.on_order[slot] <= p.reorder_point {
                groups
                    .entry((p.supplier, slot % WAREHOUSES.len()))
                    .or_default()
                    .push(slot);
            }
        }
        for ((supplier, warehouse), slots) in groups {
            self.purchase_order(day, supplier, warehouse, slots);
        }
    }

    fn purchase_order(
        &mut self,
        day: NaiveDate,
        supplier: usize,
        warehouse: usize,
        slots: Vec<usize>,
    ) {
        let id = self.next_po;
        self.next_po += 1;
        let s = &self.suppliers[supplier];
        let (lead, reliability, fill) = (s.lead_days, s.reliability, s.fill);
        let created = at(day, 18, self.rng.gen_range(0..60));
        let sent = created + Duration::minutes(30);
        let confirmed = sent + Duration::hours(self.rng.gen_range(2..30));
        let expected = day + Duration::days(lead);
        let cancelled = self.rng.gen_bool(0.01);
        let delay = if self.rng.gen_bool(reliability) {
            -self.rng.gen_range(0..=2)
        } else {
            self.rng.gen_range(1..=lead / 2 + 4)
        };
        let first = expected + Duration::days(delay);
        let partial = !cancelled && !self.rng.gen_bool(fill);
        let second = first + Duration::days(self.rng.gen_range(3..=10));
        let second_comes = self.rng.gen_bool(0.85);
        let mut received_by_now = true;
        let mut any_received = false;
        for (i, slot) in slots.iter().enumerate() {
            let product = slot / WAREHOUSES.len();
            let ordered = self.products[product].reorder_qty;
            let first_qty = if partial {
                ((ordered as f64) * self.rng.gen_range(0.5..0.9))
                    .floor()
                    .max(1.0) as i32
            } else {
                ordered
            };
            let rest = ordered - first_qty;
            let mut received = 0;
            if !cancelled {
                self.schedule(first, id, product, warehouse, first_qty, &mut received);
                if rest > 0 && second_comes {
                    self.schedule(second, id, product, warehouse, rest, &mut received);
                }
            }
            if received < ordered {
                received_by_now = false;
            }
            any_received |= received > 0;
            let cost = self.products[product].price * 7 / 10;
            self.out
                .po_lines
                .row()
                .int(id)
                .int(i as i64 + 1)
                .int(product as i64 + 1)
                .int(ordered as i64)
                .int(received as i64)
                .cents(cost);
        }
        let last = if partial && second_comes {
            second
        } else {
            first
        };
        let (status, received_at) = match (cancelled, received_by_now, any_received) {
            (true, _, _) => ("cancelled", None),
            (false, true, _) => ("received", Some(ts(at(last, 15, 0)))),
            (false, false, true) => ("partially_received", None),
            (false, false, false) => ("sent", None),
        };
        let cancel = cancelled
            .then(|| catalog::CANCEL_REASONS[self.rng.gen_range(0..catalog::CANCEL_REASONS.len())]);
        let number = format!("PO-{}-{:06}", day.year(), id);
        self.out
            .pos
            .row()
            .int(id)
            .text(&number)
            .int(supplier as i64 + 1)
            .int(warehouse as i64 + 1)
            .text(status)
            .text(&ts(created))
            .text(&ts(sent))
            .text(&ts(confirmed))
            .text(&expected.to_string())
            .opt_text(received_at.as_deref())
            .opt_text(cancel.map(|_| ts(created + Duration::days(1))).as_deref())
            .opt_text(cancel);
    }

    /// Book a delivery; counts it as received if it lands before the seed's end.
    fn schedule(
        &mut self,
        when: NaiveDate,
        po_id: i64,
        product: usize,
        warehouse: usize,
        qty: i32,
        received: &mut i32,
    ) {
        let slot = product * WAREHOUSES.len() + warehouse;
        let when = when.max(self.start + Duration::days(1));
        if when < self.as_of {
            *received += qty;
            self.on_order[slot] += qty;
            self.arrivals.entry(when).or_default().push(Arrival {
                po_id,
                product,
                warehouse,
                qty,
            });
        } else {
            // Still on its way when the data ends: open on the purchase order.
            self.on_order[slot] += qty;
        }
    }
}
