//! The two ways the benchmark reduces its figures: rounded to a readable precision where they
//! are measured, so that the table and the JSON say the same numbers, and the median picked out
//! of several rounds.

/// Rounds to `digits` decimals, for readable JSON.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The index of the item with the median `key` (the lower middle one for an even count).
pub fn median_index<T>(items: &[T], key: impl Fn(&T) -> f64) -> Option<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| key(&items[a]).total_cmp(&key(&items[b])));
    order.get(order.len().saturating_sub(1) / 2).copied()
}
