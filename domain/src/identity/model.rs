use serde::{Deserialize, Serialize};

/// Shortest password accepted at sign-up (characters).
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted (characters); bounds the hashing work one request can ask for.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Longest e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest display name (characters).
pub const MAX_DISPLAY_NAME_LEN: usize = 64;

/// Why a value given by a client was refused. The message is fit to show to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("enter a valid e-mail address")]
    InvalidEmail,
    #[error("the password must have at least {MIN_PASSWORD_LEN} characters")]
    PasswordTooShort,
    #[error("the password must have at most {MAX_PASSWORD_LEN} characters")]
    PasswordTooLong,
    #[error(
        "the name must have 1 to {MAX_DISPLAY_NAME_LEN} characters, without control characters"
    )]
    InvalidDisplayName,
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    #[error("unknown account status `{0}`")]
    UnknownStatus(String),
}

impl ValidationError {
    /// The input field the error is about, for forms that highlight it.
    pub fn field(&self) -> &'static str {
        match self {
            ValidationError::InvalidEmail => "email",
            ValidationError::PasswordTooShort | ValidationError::PasswordTooLong => "password",
            ValidationError::InvalidDisplayName => "displayName",
            ValidationError::UnknownRole(_) => "role",
            ValidationError::UnknownStatus(_) => "status",
        }
    }
}

/// An e-mail address as the person typed it (trimmed). Addresses are unique regardless of case:
/// compare and look up by [`Email::normalized`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain.tld` shapes without spaces or control characters; deliberately not a
    /// full RFC 5322 parser (the address is proven by mail, not by a regex).
    pub fn parse(input: &str) -> Result<Email, ValidationError> {
        let s = input.trim();
        if s.is_empty() || s.len() > MAX_EMAIL_LEN {
            return Err(ValidationError::InvalidEmail);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::InvalidEmail);
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(ValidationError::InvalidEmail);
        };
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(ValidationError::InvalidEmail);
        }
        Ok(Email(s.to_owned()))
    }

    /// The address as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key under which the address is unique.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A password that meets the length rules. Never logged, never stored: only its hash is.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Length is counted in characters (Unicode scalar values), not bytes.
    pub fn parse(input: &str) -> Result<Password, ValidationError> {
        let n = input.chars().count();
        if n < MIN_PASSWORD_LEN {
            return Err(ValidationError::PasswordTooShort);
        }
        if n > MAX_PASSWORD_LEN {
            return Err(ValidationError::PasswordTooLong);
        }
        Ok(Password(input.to_owned()))
    }

    /// The secret, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The name shown for an account (a person's or a publisher's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<DisplayName, ValidationError> {
        let s = input.trim();
        let n = s.chars().count();
        if n == 0 || n > MAX_DISPLAY_NAME_LEN || s.chars().any(char::is_control) {
            return Err(ValidationError::InvalidDisplayName);
        }
        Ok(DisplayName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// What an account may do. Public sign-up only ever makes [`Role::User`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Publisher,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::User, Role::Publisher, Role::Admin];

    /// The role as stored and as carried in tokens and `X-User-Role`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, ValidationError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ValidationError::UnknownRole(s.to_owned()))
    }

    /// Roles an admin may create through `createAccount`; users sign up themselves.
    pub const fn is_staff(self) -> bool {
        matches!(self, Role::Publisher | Role::Admin)
    }
}

/// Whether an account may sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Banned,
}

impl AccountStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Banned => "banned",
        }
    }

    pub fn parse(s: &str) -> Result<AccountStatus, ValidationError> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "banned" => Ok(AccountStatus::Banned),
            other => Err(ValidationError::UnknownStatus(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_trimmed_and_unique_without_case() {
        let a = Email::parse("  Ada.Lovelace@Example.ORG ").expect("valid");
        assert_eq!(a.as_str(), "Ada.Lovelace@Example.ORG");
        assert_eq!(a.normalized(), "ada.lovelace@example.org");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "ada@",
            "ada@localhost",
            "ada@.org",
            "ada@example.",
            "ada@exa..mple.org",
            "ada lovelace@example.org",
            "ada@exam\u{0}ple.org",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(ValidationError::InvalidEmail),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(ValidationError::InvalidEmail));
    }

    #[test]
    fn password_length_counts_characters() {
        assert_eq!(
            Password::parse("123456789"),
            Err(ValidationError::PasswordTooShort)
        );
        assert!(Password::parse("1234567890").is_ok());
        // ten characters, twenty bytes
        assert!(Password::parse("ééééééééé\u{e9}").is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(ValidationError::PasswordTooLong)
        );
        assert_eq!(
            format!("{:?}", Password::parse("hunter2hunter2").ok()),
            "Some(Password(<redacted>))"
        );
    }

    #[test]
    fn roles_and_statuses_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").is_err());
        assert!(!Role::User.is_staff());
        assert!(Role::Publisher.is_staff() && Role::Admin.is_staff());
        for s in [AccountStatus::Active, AccountStatus::Banned] {
            assert_eq!(AccountStatus::parse(s.as_str()), Ok(s));
        }
    }

    proptest! {
        #[test]
        fn a_parsed_email_reparses_to_itself(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
                prop_assert!(e.as_str().len() <= MAX_EMAIL_LEN);
            }
        }

        #[test]
        fn display_names_are_bounded(s in "\\PC{0,100}") {
            if let Ok(n) = DisplayName::parse(&s) {
                prop_assert!(!n.as_str().is_empty());
                prop_assert!(n.as_str().chars().count() <= MAX_DISPLAY_NAME_LEN);
            }
        }
    }
}
