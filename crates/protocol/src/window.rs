//! Town window intake (窗口收件): a case a town clerk takes in at the town centre's window on a
//! tablet, sent straight to the town's store rather than through a village phone's outbox.

use serde::{Deserialize, Serialize};

use crate::CaseSubmission;

/// `PUT /v1/window/cases/{id}`: a sealed case from a staff tablet, with the clerk who took it in.
///
/// The submission is the same one a village phone sends (case number minted on the tablet for the
/// applicant's village, pages uploaded first); `submission.responsible` names the tablet and the
/// clerk, who stays responsible (首问负责). The server records the clerk only when `pin` checks
/// out for `staff` (or, in a town without staff accounts yet, the tablet's enrolled person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowIntake {
    pub submission: CaseSubmission,
    /// The clerk's name, as on their staff account.
    #[serde(default)]
    pub staff: String,
    /// The clerk's PIN, entered when they took over the tablet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}
