//! The simulated SQS standard queue of `[events]`: messages with their delivery time, visibility
//! timeout, receive count and receipt handles, as SQS keeps them.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::rng::{BASE64ISH, Rng, uuid4};
use super::scenario::EventsSpec;

/// What `SenderId` says of a message EventBridge delivered (or the control API put): a fixed,
/// made-up principal id.
pub(crate) const EVENTS_SENDER_ID: &str = "AIDAEVENTBRIDGESIMULAT";

/// The largest message SQS accepts (256 KiB).
pub(crate) const MAX_BODY_BYTES: usize = 262_144;

#[derive(Debug)]
struct Message {
    id: String,
    body: String,
    md5: String,
    /// When it reached the queue (`SentTimestamp`).
    sent: SystemTime,
    /// Before this, the message is not in the queue yet (delivery delay).
    available_at: Instant,
    /// While in the future, the message is in flight (received, not deleted).
    invisible_until: Option<Instant>,
    receive_count: u32,
    first_receive: Option<SystemTime>,
    /// The handle of the latest receive: the only one that deletes the message.
    handle: Option<String>,
}

/// One message as ReceiveMessage hands it out.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) message_id: String,
    pub(crate) receipt_handle: String,
    pub(crate) md5_of_body: String,
    pub(crate) body: String,
    pub(crate) sent: SystemTime,
    pub(crate) receive_count: u32,
    pub(crate) first_receive: SystemTime,
}

/// What DeleteMessage did with a receipt handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeleteOutcome {
    Deleted,
    /// A handle the queue issued, but not the latest of a message still there (an older receive,
    /// or the message is already deleted): AWS answers success and deletes nothing.
    Stale,
    /// A handle the queue never issued.
    Invalid,
}

/// What ChangeMessageVisibility did with a receipt handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VisibilityOutcome {
    Changed,
    /// The latest handle of a message whose visibility timeout has ended.
    NotInFlight,
    /// The message is deleted, or the handle is not its latest.
    Gone,
    Invalid,
}

/// The counts `GET /_simulator/queue` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages a ReceiveMessage would return now.
    pub visible: u64,
    /// Received, not deleted, visibility timeout not over.
    pub in_flight: u64,
    /// Sent, but their delivery delay is not over.
    pub delayed: u64,
    pub deleted: u64,
    /// Messages handed out by ReceiveMessage, redeliveries included.
    pub received_total: u64,
    /// Messages that entered the queue (events and raw messages).
    pub sent_total: u64,
}

#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) name: String,
    /// The account the queue belongs to (the management account).
    pub(crate) owner: String,
    pub(crate) visibility_timeout: Duration,
    pub(crate) delivery_delay: Duration,
    messages: Vec<Message>,
    /// Every receipt handle issued, with the id of the message it was issued for.
    handles: HashMap<String, String>,
    deleted: u64,
    received: u64,
    sent: u64,
    rng: Rng,
}

impl Queue {
    pub(crate) fn new(spec: &EventsSpec, owner: &str) -> Queue {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Queue {
            name: spec.queue_name.clone(),
            owner: owner.to_string(),
            visibility_timeout: Duration::from_secs(spec.visibility_timeout_s),
            delivery_delay: Duration::from_millis(spec.delivery_delay_ms),
            messages: Vec::new(),
            handles: HashMap::new(),
            deleted: 0,
            received: 0,
            sent: 0,
            rng: Rng::new(seed ^ 0x5153_5153),
        }
    }

    /// The queue's generator, for the ids of the events it receives.
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A fresh UUID (version 4 form), for message ids and the events' ids.
    pub(crate) fn uuid(&mut self) -> String {
        uuid4(&mut self.rng)
    }

    /// Put a message in the queue; it becomes visible after `delay`. Returns its id.
    pub(crate) fn send(&mut self, body: String, delay: Duration) -> String {
        let id = self.uuid();
        self.messages.push(Message {
            id: id.clone(),
            md5: md5_hex(body.as_bytes()),
            body,
            sent: SystemTime::now() + delay,
            available_at: Instant::now() + delay,
            invisible_until: None,
            receive_count: 0,
            first_receive: None,
            handle: None,
        });
        self.sent += 1;
        id
    }

    /// Receive up to `max` visible messages (oldest first), hiding each for `visibility`.
    pub(crate) fn receive(&mut self, max: usize, visibility: Duration, now: Instant) -> Vec<Received> {
        let wall = SystemTime::now();
        let mut out = Vec::new();
        for i in 0..self.messages.len() {
            if out.len() >= max {
                break;
            }
            if !visible(&self.messages[i], now) {
                continue;
            }
            let handle = format!("AQEB{}", self.rng.token(BASE64ISH, 172));
            let m = &mut self.messages[i];
            m.receive_count += 1;
            let first = *m.first_receive.get_or_insert(wall);
            m.invisible_until = Some(now + visibility);
            m.handle = Some(handle.clone());
            self.handles.insert(handle.clone(), m.id.clone());
            out.push(Received {
                message_id: m.id.clone(),
                receipt_handle: handle,
                md5_of_body: m.md5.clone(),
                body: m.body.clone(),
                sent: m.sent,
                receive_count: m.receive_count,
                first_receive: first,
            });
        }
        self.received += out.len() as u64;
        out
    }

    /// The next moment a message may become visible (its delivery delay or visibility timeout
    /// ends), if any is pending.
    pub(crate) fn next_change(&self, now: Instant) -> Option<Instant> {
        self.messages
            .iter()
            .flat_map(|m| [Some(m.available_at), m.invisible_until])
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    pub(crate) fn delete(&mut self, handle: &str) -> DeleteOutcome {
        let Some(id) = self.handles.get(handle) else {
            return DeleteOutcome::Invalid;
        };
        match self
            .messages
            .iter()
            .position(|m| m.id == *id && m.handle.as_deref() == Some(handle))
        {
            Some(i) => {
                self.messages.remove(i);
                self.deleted += 1;
                DeleteOutcome::Deleted
            }
            None => DeleteOutcome::Stale,
        }
    }

    pub(crate) fn change_visibility(&mut self, handle: &str, timeout: Duration, now: Instant) -> VisibilityOutcome {
        let Some(id) = self.handles.get(handle) else {
            return VisibilityOutcome::Invalid;
        };
        let Some(m) = self
            .messages
            .iter_mut()
            .find(|m| m.id == *id && m.handle.as_deref() == Some(handle))
        else {
            return VisibilityOutcome::Gone;
        };
        match m.invisible_until {
            Some(t) if t > now => {
                m.invisible_until = Some(now + timeout);
                VisibilityOutcome::Changed
            }
            _ => VisibilityOutcome::NotInFlight,
        }
    }

    pub(crate) fn counts(&self, now: Instant) -> QueueCounts {
        let mut c = QueueCounts {
            visible: 0,
            in_flight: 0,
            delayed: 0,
            deleted: self.deleted,
            received_total: self.received,
            sent_total: self.sent,
        };
        for m in &self.messages {
            if m.available_at > now {
                c.delayed += 1;
            } else if m.invisible_until.is_some_and(|t| t > now) {
                c.in_flight += 1;
            } else {
                c.visible += 1;
            }
        }
        c
    }
}

fn visible(m: &Message, now: Instant) -> bool {
    m.available_at <= now && m.invisible_until.is_none_or(|t| t <= now)
}

/// Whether SQS accepts `body` as a message: 1 byte to 256 KiB of the characters it allows
/// (`#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF`).
pub(crate) fn check_body(body: &str) -> Result<(), String> {
    if body.is_empty() || body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "a message body is 1 to {MAX_BODY_BYTES} bytes; this one is {} bytes",
            body.len()
        ));
    }
    if let Some(c) = body
        .chars()
        .find(|&c| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
    {
        return Err(format!(
            "a message body may not contain {c:?}; SQS allows #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF"
        ));
    }
    Ok(())
}

/// MD5 (RFC 1321) in lowercase hex: SQS's `MD5OfBody`.
pub(crate) fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
    }
    h.iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(visibility_s: u64) -> Queue {
        Queue::new(
            &EventsSpec {
                queue_name: "q".into(),
                delivery_delay_ms: 0,
                visibility_timeout_s: visibility_s,
            },
            "111111111111",
        )
    }

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn uuids_have_the_version_4_form() {
        let mut rng = Rng::new(7);
        let u = uuid4(&mut rng);
        assert_eq!(u.len(), 36, "{u}");
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4') && "89ab".contains(&parts[3][..1]), "{u}");
        assert_ne!(u, uuid4(&mut rng));
    }

    #[test]
    fn a_message_is_redelivered_after_its_visibility_timeout_with_a_new_handle() {
        let mut q = queue(30);
        q.send("one".into(), Duration::ZERO);
        let t0 = Instant::now();
        let first = q.receive(10, Duration::from_secs(30), t0);
        assert_eq!(first.len(), 1);
        assert!(q.receive(10, Duration::from_secs(30), t0).is_empty());
        assert_eq!(q.counts(t0).in_flight, 1);
        assert_eq!(q.next_change(t0), Some(t0 + Duration::from_secs(30)));
        let later = t0 + Duration::from_secs(31);
        let second = q.receive(10, Duration::from_secs(30), later);
        assert_eq!(second[0].receive_count, 2);
        assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
        // The old handle succeeds and deletes nothing; the latest deletes.
        assert_eq!(q.delete(&first[0].receipt_handle), DeleteOutcome::Stale);
        assert_eq!(
            q.change_visibility(&first[0].receipt_handle, Duration::ZERO, later),
            VisibilityOutcome::Gone
        );
        assert_eq!(q.delete("AQEBnope"), DeleteOutcome::Invalid);
        assert_eq!(q.delete(&second[0].receipt_handle), DeleteOutcome::Deleted);
        assert_eq!(q.delete(&second[0].receipt_handle), DeleteOutcome::Stale);
        let c = q.counts(later);
        assert_eq!(
            (c.visible, c.in_flight, c.deleted, c.received_total, c.sent_total),
            (0, 0, 1, 2, 1)
        );
    }

    #[test]
    fn delayed_messages_wait_and_visibility_changes_apply_to_messages_in_flight() {
        let mut q = queue(30);
        let t0 = Instant::now();
        q.send("late".into(), Duration::from_secs(5));
        assert!(q.receive(1, Duration::from_secs(30), t0).is_empty());
        assert_eq!(q.counts(t0).delayed, 1);
        let t1 = t0 + Duration::from_secs(6);
        let got = q.receive(1, Duration::from_secs(30), t1);
        assert_eq!(got.len(), 1);
        let h = &got[0].receipt_handle;
        assert_eq!(q.change_visibility(h, Duration::ZERO, t1), VisibilityOutcome::Changed);
        assert_eq!(
            q.change_visibility(h, Duration::from_secs(5), t1),
            VisibilityOutcome::NotInFlight
        );
        assert_eq!(q.counts(t1).visible, 1);
    }

    #[test]
    fn bodies_are_checked_as_sqs_checks_them() {
        assert!(check_body("{}").is_ok());
        assert!(check_body("").is_err());
        assert!(check_body("a\u{1}b").unwrap_err().contains("#x9"));
        assert!(check_body(&"x".repeat(MAX_BODY_BYTES + 1)).is_err());
    }
}
