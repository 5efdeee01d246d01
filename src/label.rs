//! Bounded label values declared once: [`labels!`] makes an enum whose every variant names its
//! label value, with `ALL`, `as_str` and `Display` derived from that one list. A leaf.

/// `labels! { /// docs  pub enum Name { /// docs  Variant => "label_value", ... } }`
macro_rules! labels {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $label:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        $vis enum $name {
            $($(#[$variant_meta])* #[serde(rename = $label)] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use labels;

#[cfg(test)]
mod tests {
    labels! {
        /// A test set.
        enum Colour {
            /// Docs are kept.
            Red => "red",
            DeepBlue => "deep_blue",
        }
    }

    #[test]
    fn every_value_has_its_label_in_order() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DeepBlue]);
        assert_eq!(Colour::DeepBlue.as_str(), "deep_blue");
        assert_eq!(Colour::Red.to_string(), "red");
        assert_eq!(serde_json::to_string(&Colour::DeepBlue).unwrap(), "\"deep_blue\"");
    }
}
