//! Mail templates: one `NAME.txt` (its first line `Subject: ..`) and one
//! `NAME.html` per mail, rendered with `minijinja`. HTML is auto-escaped;
//! the text part and the subject are not.

use std::path::Path;

use minijinja::{Environment, Value};

/// Every template file, with the text built into the binary.
pub const TEMPLATE_FILES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("welcome.txt", include_str!("../../templates/welcome.txt")),
    ("welcome.html", include_str!("../../templates/welcome.html")),
    ("password_reset.txt", include_str!("../../templates/password_reset.txt")),
    ("password_reset.html", include_str!("../../templates/password_reset.html")),
    ("notification.txt", include_str!("../../templates/notification.txt")),
    ("notification.html", include_str!("../../templates/notification.html")),
    ("campaign.txt", include_str!("../../templates/campaign.txt")),
    ("campaign.html", include_str!("../../templates/campaign.html")),
];

/// A template that does not load or render.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A template file could not be read.
    #[error("cannot read the template {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template does not parse, or rendering failed.
    #[error("template `{name}`")]
    Render {
        /// The template.
        name: String,
        /// minijinja's error, with the line.
        #[source]
        source: minijinja::Error,
    },
    /// The text template does not start with a `Subject:` line.
    #[error("template `{0}` must start with a `Subject: ..` line")]
    NoSubject(String),
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The templates built into the binary.
    pub fn builtin() -> Result<Self, TemplateError> {
        Self::from_sources(TEMPLATE_FILES.iter().map(|(n, s)| ((*n).to_owned(), (*s).to_owned())))
    }

    /// The templates in `dir`, same file names as `templates/` (all must be
    /// there: a missing one is an error at start, not in the middle of a run).
    pub fn from_dir(dir: &Path) -> Result<Self, TemplateError> {
        let mut sources = Vec::new();
        for (name, _) in TEMPLATE_FILES {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| TemplateError::Read { path: path.display().to_string(), source })?;
            sources.push(((*name).to_owned(), text));
        }
        Self::from_sources(sources)
    }

    fn from_sources(sources: impl IntoIterator<Item = (String, String)>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        for (name, text) in sources {
            env.add_template_owned(name.clone(), text).map_err(|source| TemplateError::Render { name, source })?;
        }
        Ok(Templates { env })
    }

    /// Renders mail `mail` (`welcome`, `password_reset`, ...) with `ctx`
    /// (a `minijinja::context! { .. }`).
    pub fn render(&self, mail: &str, ctx: Value) -> Result<Rendered, TemplateError> {
        let text = self.render_one(&format!("{mail}.txt"), ctx.clone())?;
        let html = self.render_one(&format!("{mail}.html"), ctx)?;
        let (first, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
        let subject = first.strip_prefix("Subject:").ok_or_else(|| TemplateError::NoSubject(format!("{mail}.txt")))?;
        Ok(Rendered { subject: subject.trim().to_owned(), text: body.trim_start_matches('\n').to_owned(), html })
    }

    fn render_one(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let err = |source| TemplateError::Render { name: name.to_owned(), source };
        self.env.get_template(name).map_err(err)?.render(ctx).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn renders_subject_text_and_escaped_html() {
        let t = Templates::builtin().expect("built-in templates parse");
        let r = t
            .render(
                "welcome",
                context! { username => "Ann <b>", app_name => "Example",
                base_url => Value::from_safe_string("http://localhost:3000".into()) },
            )
            .expect("renders");
        assert_eq!(r.subject, "Welcome to Example, Ann <b>!");
        assert!(r.text.starts_with("Hello Ann <b>,"), "{}", r.text);
        assert!(r.html.contains("Welcome, Ann &lt;b&gt;!"), "{}", r.html);
        assert!(r.html.contains("http://localhost:3000/login"), "{}", r.html);
    }

    #[test]
    fn campaign_paragraphs_split() {
        let t = Templates::builtin().expect("parse");
        let ctx = context! { name => "Bo", subject => "News", body => "One.\n\nTwo.", campaign => "c1",
        to => "bo@example.com", app_name => "Example", base_url => "http://x" };
        let r = t.render("campaign", ctx).expect("renders");
        assert!(r.html.contains("<p>One.</p>") && r.html.contains("<p>Two.</p>"), "{}", r.html);
    }
}
