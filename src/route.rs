//! The app's screens as routes, and the layout that sends the user where their enrolment allows.
//!
//! The router keeps the history in memory; the top bar's ‹ goes back whenever there is somewhere
//! to go back to, and the platform's own back (Android's back key, which wry turns into the
//! webview's `history.back()`) does the same through `use_platform_back`.

use bianmin_engine::enrolment::Enrolment;
use bianmin_protocol::sync::DeviceRole;
use dioxus::prelude::*;

use crate::services::use_enrolment;
use crate::views::case::CaseScreen;
use crate::views::enrol::Enrol;
use crate::views::guide::GuideScreen;
use crate::views::home::Home;
use crate::views::items::ItemList;
use crate::views::outbox::Outbox;
use crate::views::receipt::ReceiptScreen;
use crate::views::town::case::TownCase;
use crate::views::town::operator::OperatorGate;
use crate::views::town::reviews::TownReviews;
use crate::views::town::window::{TownWindow, WindowCase, WindowGuide};
use crate::views::town::TownInbox;

/// Every screen of the app.
#[derive(Routable, Clone, PartialEq, Debug)]
#[rustfmt::skip]
pub enum Route {
    #[layout(Shell)]
        /// Village agent home: counts, sync, the two main actions.
        #[route("/")]
        Home {},
        /// 设备登记.
        #[route("/enrol")]
        Enrol {},
        /// The village items, searchable.
        #[route("/items")]
        ItemList {},
        /// An item's service guide and 一次性告知.
        #[route("/guide/:code")]
        GuideScreen { code: String },
        /// One case on the phone: form, materials, 初审, seal, progress.
        #[route("/case/:id")]
        CaseScreen { id: String },
        /// 我的办件.
        #[route("/outbox")]
        Outbox {},
        /// The resident's receipt with the QR link.
        #[route("/receipt/:id")]
        ReceiptScreen { id: String },
        /// Town staff: the inbox of the town's villages.
        #[route("/town")]
        TownInbox {},
        /// Town staff: one case, its pages and the actions.
        #[route("/town/case/:id")]
        TownCase { id: String },
        /// Town staff: the town's bad reviews and their loop (核实 → 整改 → 回访).
        #[route("/town/reviews")]
        TownReviews {},
        /// Town staff: 窗口收件, the applicant's village and the item.
        #[route("/town/window")]
        TownWindow {},
        /// Town staff: an item's guide at the window, told to the resident before starting.
        #[route("/town/window-guide/:village/:code")]
        WindowGuide { village: String, code: String },
        /// Town staff: a case being taken in at the window (form, materials, 初审, send).
        #[route("/town/window-case/:id")]
        WindowCase { id: String },
}

impl Route {
    /// The first screen for an enrolment.
    pub fn start(enrolment: Option<&Enrolment>) -> Route {
        match enrolment.map(|e| e.role) {
            None => Route::Enrol {},
            Some(DeviceRole::Staff) => Route::TownInbox {},
            Some(DeviceRole::Agent) => Route::Home {},
        }
    }

    /// Where a device with this enrolment must go instead of `self`, if anywhere: nothing but
    /// enrolment before it, no enrolment screen after it, and each role to its own screens.
    pub fn redirect(&self, enrolment: Option<&Enrolment>) -> Option<Route> {
        let role = enrolment.map(|e| e.role);
        let town_screen = matches!(
            self,
            Route::TownInbox {}
                | Route::TownCase { .. }
                | Route::TownReviews {}
                | Route::TownWindow {}
                | Route::WindowGuide { .. }
                | Route::WindowCase { .. }
        );
        let allowed = match (role, self) {
            (None, Route::Enrol {}) => true,
            (None, _) => false,
            (Some(_), Route::Enrol {}) => false,
            (Some(DeviceRole::Staff), _) => town_screen,
            (Some(DeviceRole::Agent), _) => !town_screen,
        };
        (!allowed).then(|| Route::start(enrolment))
    }
}

/// The layout of every screen: redirects by enrolment, then shows the route.
#[component]
fn Shell() -> Element {
    let enrolment = use_enrolment();
    let route = use_route::<Route>();
    if let Some(to) = route.redirect(enrolment.read().as_ref()) {
        // Navigating while rendering would write the router's state mid-render; the task runs
        // right after this render.
        let nav = navigator();
        spawn(async move {
            nav.replace(to);
        });
        return rsx! {};
    }
    use_platform_back();
    crate::views::town::operator::provide_operator();
    if matches!(
        route,
        Route::TownInbox {}
            | Route::TownCase { .. }
            | Route::TownWindow {}
            | Route::WindowGuide { .. }
            | Route::WindowCase { .. }
    ) {
        // A shared tablet: who is working comes first.
        return rsx! {
            div { class: "app", OperatorGate { Outlet::<Route> {} } }
        };
    }
    rsx! {
        div { class: "app", Outlet::<Route> {} }
    }
}

/// Android's back key goes back through the webview's own history (wry's activity calls
/// `goBack()` while the webview can go back, and closes the app otherwise). The router's history
/// lives in memory, so while the app has a screen to go back to, the webview gets one entry to
/// pop; popping it steps the router back. At the first screen there is none, and back leaves the
/// app as users expect.
fn use_platform_back() {
    let nav = navigator();
    let mut armed = use_signal(|| false);
    use_future(move || async move {
        let mut popped =
            document::eval("window.addEventListener('popstate', () => dioxus.send(true));");
        while popped.recv::<bool>().await.is_ok() {
            armed.set(false);
            nav.go_back();
        }
    });
    let route = use_route::<Route>();
    let can_go_back = nav.can_go_back();
    use_effect(use_reactive!(|route, can_go_back| {
        let _ = route;
        if can_go_back && !*armed.peek() {
            armed.set(true);
            document::eval("history.pushState({ bianmin: true }, '');");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn enrolled(role: DeviceRole) -> Enrolment {
        Enrolment {
            role,
            server: "http://x".into(),
            place: "140423100201".into(),
            place_name: String::new(),
            person: "李".into(),
            device_code: "ABCDEF".into(),
            signing_key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            server_key: None,
            enrolled_at: Utc::now(),
            last_sync: None,
        }
    }

    #[test]
    fn each_enrolment_state_reaches_only_its_own_screens() {
        let case = Route::CaseScreen { id: "x".into() };
        let town_case = Route::TownCase { id: "x".into() };
        assert_eq!(case.redirect(None), Some(Route::Enrol {}));
        assert_eq!(Route::Enrol {}.redirect(None), None);
        let agent = enrolled(DeviceRole::Agent);
        assert_eq!(case.redirect(Some(&agent)), None);
        assert_eq!(Route::Enrol {}.redirect(Some(&agent)), Some(Route::Home {}));
        assert_eq!(town_case.redirect(Some(&agent)), Some(Route::Home {}));
        let staff = enrolled(DeviceRole::Staff);
        assert_eq!(town_case.redirect(Some(&staff)), None);
        assert_eq!(
            Route::Home {}.redirect(Some(&staff)),
            Some(Route::TownInbox {})
        );
    }
}
