//! Capability: ask the host to send a message to someone.
//!
//! Nothing leaves the sandbox: the host records the notification with the
//! step's outcome and delivers it once that outcome is committed, so a step
//! that is run again never sends twice. The host caps the number of
//! notifications per execution; a step over the cap fails.

/// One message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The delivery channel, for example `email`; the deployment decides
    /// what each channel means.
    pub channel: String,
    /// The recipient's address on that channel, if the step knows it.
    pub to: Option<String>,
    /// The subject line.
    pub subject: String,
    /// The message body.
    pub body: String,
}

impl Notification {
    /// A message on `channel` with a subject and a body.
    pub fn new(
        channel: impl Into<String>,
        subject: impl Into<String>,
        body: impl Into<String>,
    ) -> Notification {
        Notification {
            channel: channel.into(),
            to: None,
            subject: subject.into(),
            body: body.into(),
        }
    }

    /// Addresses the message to `to`.
    pub fn to(mut self, to: impl Into<String>) -> Notification {
        self.to = Some(to.into());
        self
    }
}

/// Queues `notification` for delivery.
pub fn send(notification: Notification) {
    #[cfg(target_arch = "wasm32")]
    crate::guest::send(notification);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::send(notification);
}
