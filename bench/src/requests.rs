//! What the load generator sends: signed ChatBrick and liveDesk requests, serialized before the
//! clock starts, with provider ids that are either time-ordered or random.
//!
//! Svix's ids (ChatBrick's `svix-id`) are time-ordered, so hookline's store used to add them at
//! the end of its indexes; Chatwoot's `X-Chatwoot-Delivery` (liveDesk's) is a random UUID, as is
//! the id of any sender that does not order its ids. `--ids` picks the kind, and a run with both
//! sends the same bodies with either kind of id, so that the difference is the ids alone.

use bytes::Bytes;
use hookline::livedesk::verify::ChatwootVerifier;
use hookline::signature::Signer;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Where ChatBrick webhooks go, on hookline and on the baseline.
pub const CHATBRICK_PATH: &str = "/webhooks/chatbrick";
/// Where liveDesk webhooks go, followed by the URL token.
pub const LIVEDESK_PATH: &str = "/webhooks/livedesk";

/// The ChatBrick fixtures the requests carry, cycled in order: realistic bodies of every size.
const CHATBRICK_FIXTURES: [&str; 9] = [
    include_str!("../../fixtures/chatbrick/account.created.example.json"),
    include_str!("../../fixtures/chatbrick/account.deactivated.example.json"),
    include_str!("../../fixtures/chatbrick/contact.connection.changed.store_and_staff.json"),
    include_str!("../../fixtures/chatbrick/contact.connection.connected.store_and_staff.json"),
    include_str!("../../fixtures/chatbrick/contact.connection.connected.store_only.json"),
    include_str!("../../fixtures/chatbrick/contact.connection.disconnected.example.json"),
    include_str!("../../fixtures/chatbrick/store.created.example.json"),
    include_str!("../../fixtures/chatbrick/store.deactivated.example.json"),
    include_str!("../../fixtures/chatbrick/store.updated.example.json"),
];

/// The liveDesk fixtures, cycled in order.
const LIVEDESK_FIXTURES: [&str; 5] = [
    include_str!("../../fixtures/livedesk/conversation_created.api_channel_doc.json"),
    include_str!("../../fixtures/livedesk/conversation_status_changed.composed_from_doc.json"),
    include_str!("../../fixtures/livedesk/conversation_updated.composed_from_doc.json"),
    include_str!("../../fixtures/livedesk/message_created.api_channel_doc.json"),
    include_str!("../../fixtures/livedesk/message_updated.composed_from_doc.json"),
];

/// How the provider ids of a run's requests are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Ids {
    /// Increasing with every request, as Svix's are (ChatBrick `msg_<run>_<n>`, liveDesk
    /// UUIDs that count up).
    Ordered,
    /// Random: ChatBrick `msg_` and 27 random characters, liveDesk random (version 4) UUIDs, as
    /// Chatwoot sends them.
    Random,
}

impl Ids {
    /// Its name in labels and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Ids::Ordered => "ordered",
            Ids::Random => "random",
        }
    }
}

/// The shape of a run's load: which ids, how many liveDesk requests among the ChatBrick ones.
#[derive(Debug, Clone)]
pub struct LoadShape {
    /// Percent of requests that are liveDesk's (the rest are ChatBrick's), spread evenly.
    pub livedesk_percent: u32,
    /// The liveDesk URL token hookline is configured with.
    pub livedesk_token: String,
    /// Signs liveDesk requests as Chatwoot does (`X-Chatwoot-Signature`).
    pub chatwoot: ChatwootVerifier,
    /// Signs ChatBrick requests (`svix-signature`).
    pub signer: Signer,
}

/// One request, signed and serialized before the clock starts.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Request line and headers, including a unique provider id (so that hookline stores every
    /// request: no duplicates), the time of signing and the signature.
    pub head: Bytes,
    /// The fixture body, shared between requests.
    pub body: Bytes,
}

impl LoadShape {
    /// Whether request `n` is a liveDesk one: `livedesk_percent` of them, evenly spread (with
    /// 25, every fourth).
    fn is_livedesk(&self, n: usize) -> bool {
        let p = self.livedesk_percent as usize;
        (n + 1) * p / 100 > n * p / 100
    }

    /// Signs `count` requests whose ids are unique to `prefix`, with the current time.
    pub fn prepare(&self, count: usize, prefix: &str, ids: Ids) -> Vec<Prepared> {
        let chatbrick: Vec<Bytes> = CHATBRICK_FIXTURES.iter().map(|f| bytes(f)).collect();
        let livedesk: Vec<Bytes> = LIVEDESK_FIXTURES.iter().map(|f| bytes(f)).collect();
        let timestamp = chrono::Utc::now().timestamp();
        let mut ids = IdMaker::new(ids, prefix);
        let (mut cb, mut ld) = (0, 0);
        (0..count)
            .map(|n| {
                if self.is_livedesk(n) {
                    let body = livedesk[ld % livedesk.len()].clone();
                    ld += 1;
                    let delivery = ids.livedesk(n);
                    let signature = self.chatwoot.sign(timestamp, &body);
                    Prepared {
                        head: livedesk_head(
                            &self.livedesk_token,
                            &delivery,
                            timestamp,
                            &signature,
                            body.len(),
                        ),
                        body,
                    }
                } else {
                    let body = chatbrick[cb % chatbrick.len()].clone();
                    cb += 1;
                    let id = ids.chatbrick(n);
                    let signature = self.signer.sign(&id, timestamp, &body);
                    Prepared {
                        head: chatbrick_head(&id, timestamp, &signature, body.len()),
                        body,
                    }
                }
            })
            .collect()
    }
}

fn bytes(fixture: &'static str) -> Bytes {
    Bytes::from_static(fixture.as_bytes())
}

/// Makes the provider ids of one run's requests.
struct IdMaker {
    kind: Ids,
    /// Unique to the run and the server it goes to.
    prefix: String,
    /// The first 48 bits of ordered liveDesk UUIDs: a hash of the prefix, so that runs differ.
    uuid_high: u64,
    rng: rand::rngs::StdRng,
}

impl IdMaker {
    fn new(kind: Ids, prefix: &str) -> IdMaker {
        let uuid_high = prefix.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) & 0xffff_ffff_ffff;
        IdMaker {
            kind,
            prefix: prefix.to_owned(),
            uuid_high,
            rng: rand::rngs::StdRng::from_entropy(),
        }
    }

    /// A ChatBrick `svix-id`: `msg_<prefix>_<n>` with `n` zero-padded, so that ids sort as
    /// they are sent; or `msg_` and 27 random alphanumerics (a KSUID's length).
    fn chatbrick(&mut self, n: usize) -> String {
        match self.kind {
            Ids::Ordered => format!("msg_{}_{n:010}", self.prefix),
            Ids::Random => {
                let tail: String = (0..27)
                    .map(|_| char::from(self.rng.sample(rand::distributions::Alphanumeric)))
                    .collect();
                format!("msg_{tail}")
            }
        }
    }

    /// A liveDesk `X-Chatwoot-Delivery` UUID: counting up from the run's own prefix, or random
    /// (version 4).
    fn livedesk(&mut self, n: usize) -> String {
        let (high, low) = match self.kind {
            Ids::Ordered => (
                self.uuid_high << 16 | 0x7000,
                0x8000_0000_0000_0000 | n as u64,
            ),
            Ids::Random => {
                let (high, low): (u64, u64) = (self.rng.gen(), self.rng.gen());
                (high & !0xf000 | 0x4000, low & !(0xc << 60) | 0x8 << 60)
            }
        };
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

/// The request line and headers of one signed ChatBrick delivery.
pub fn chatbrick_head(id: &str, timestamp: i64, signature: &str, body_len: usize) -> Bytes {
    Bytes::from(format!(
        "POST {CHATBRICK_PATH} HTTP/1.1\r\n\
         host: 127.0.0.1\r\n\
         content-type: application/json\r\n\
         content-length: {body_len}\r\n\
         svix-id: {id}\r\n\
         svix-timestamp: {timestamp}\r\n\
         svix-signature: {signature}\r\n\r\n"
    ))
}

/// The request line and headers of one signed liveDesk delivery.
fn livedesk_head(
    token: &str,
    delivery: &str,
    timestamp: i64,
    signature: &str,
    body_len: usize,
) -> Bytes {
    Bytes::from(format!(
        "POST {LIVEDESK_PATH}/{token} HTTP/1.1\r\n\
         host: 127.0.0.1\r\n\
         content-type: application/json\r\n\
         content-length: {body_len}\r\n\
         x-chatwoot-delivery: {delivery}\r\n\
         x-chatwoot-timestamp: {timestamp}\r\n\
         x-chatwoot-signature: {signature}\r\n\r\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(livedesk_percent: u32) -> LoadShape {
        LoadShape {
            livedesk_percent,
            livedesk_token: "tok".into(),
            chatwoot: ChatwootVerifier::new("cw".into(), std::time::Duration::from_secs(300)),
            signer: Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap()).unwrap(),
        }
    }

    fn heads(requests: &[Prepared]) -> Vec<String> {
        requests
            .iter()
            .map(|r| String::from_utf8(r.head.to_vec()).unwrap())
            .collect()
    }

    /// The value of header `name` in a serialized head.
    fn header<'a>(head: &'a str, name: &str) -> &'a str {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
    }

    #[test]
    fn requests_are_signed_and_unique() {
        let requests = shape(0).prepare(3, "t", Ids::Ordered);
        let heads = heads(&requests);
        assert!(heads[0].contains("svix-id: msg_t_0000000000\r\n"));
        assert!(heads[2].contains("svix-id: msg_t_0000000002\r\n"));
        assert!(heads.iter().all(|h| h.contains("svix-signature: v1,")));
        let length = format!("content-length: {}\r\n", requests[1].body.len());
        assert!(heads[1].contains(&length));
    }

    #[test]
    fn every_fourth_request_is_livedesk_with_a_signed_delivery_uuid() {
        let requests = shape(25).prepare(400, "t", Ids::Random);
        let heads = heads(&requests);
        let livedesk: Vec<&String> = heads
            .iter()
            .filter(|h| h.starts_with("POST /webhooks/livedesk/tok "))
            .collect();
        assert_eq!(livedesk.len(), 100);
        assert!(heads[3].starts_with("POST /webhooks/livedesk/tok "));
        let uuid = header(livedesk[0], "x-chatwoot-delivery");
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4", "a version 4 UUID: {uuid}");
        assert!(header(livedesk[0], "x-chatwoot-signature").starts_with("sha256="));
        let mut ids: Vec<&str> = heads
            .iter()
            .map(|h| {
                let name = if h.contains("svix-id") {
                    "svix-id"
                } else {
                    "x-chatwoot-delivery"
                };
                header(h, name)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 400, "every id is unique");
    }

    #[test]
    fn ordered_ids_sort_as_they_are_sent_and_random_ones_do_not() {
        let ids_of = |ids: Ids| -> Vec<String> {
            heads(&shape(50).prepare(200, "t", ids))
                .iter()
                .map(|h| {
                    let name = if h.contains("svix-id") {
                        "svix-id"
                    } else {
                        "x-chatwoot-delivery"
                    };
                    header(h, name).to_owned()
                })
                .collect()
        };
        for source in 0..2 {
            let ordered: Vec<String> = ids_of(Ids::Ordered)
                .into_iter()
                .skip(source)
                .step_by(2)
                .collect();
            assert!(ordered.windows(2).all(|w| w[0] < w[1]), "{ordered:?}");
            let random: Vec<String> = ids_of(Ids::Random)
                .into_iter()
                .skip(source)
                .step_by(2)
                .collect();
            assert!(!random.windows(2).all(|w| w[0] < w[1]), "{random:?}");
        }
    }
}
