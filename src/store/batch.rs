//! Taking a batch from a writer's queue: what both stores' group commits start from.

use tokio::sync::mpsc;

/// Adds the jobs already waiting in `queue` to `batch`, without waiting for more, until the
/// batch holds `max`.
pub(crate) fn take_waiting<T>(queue: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    while batch.len() < max {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn takes_what_waits_up_to_the_most_a_batch_holds() {
        let (sender, mut queue) = mpsc::channel(8);
        for n in 0..5 {
            sender.send(n).await.unwrap();
        }
        let mut batch = vec![-1];
        take_waiting(&mut queue, &mut batch, 4);
        assert_eq!(batch, [-1, 0, 1, 2]);
        take_waiting(&mut queue, &mut batch, 10);
        assert_eq!(batch, [-1, 0, 1, 2, 3, 4], "and stops when none waits");
    }
}
