//! Reusable UI pieces shared by several screens.
