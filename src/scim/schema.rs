//! Attribute metadata (RFC 7643 §2, §7): the single source of truth for how
//! each attribute is parsed, compared, stored, returned and described in
//! `/Schemas`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

#[derive(Debug)]
pub struct AttributeDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
}

#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

#[derive(Debug)]
pub struct ResourceTypeDef {
    /// "User" / "Group"
    pub name: &'static str,
    /// "/Users" / "/Groups"
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static SchemaDef,
    /// (extension schema, required)
    pub extensions: &'static [(&'static SchemaDef, bool)],
}

// ---------------------------------------------------------------------------
// Schema data (RFC 7643 §3.1, §4, §8.7)
// ---------------------------------------------------------------------------

use serde_json::{json, Map, Value};

/// `urn:ietf:params:scim:schemas:core:2.0:User`
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// `urn:ietf:params:scim:schemas:core:2.0:Group`
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Atlassian's own extension carrying the Atlassian account id.
pub const ATLASSIAN_EXTERNAL_URN: &str = "urn:scim:schemas:extension:atlassian-external:1.0";
/// Schema of the `/Schemas` documents themselves (RFC 7643 §7).
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// Schema of the `/ResourceTypes` documents (RFC 7643 §6).
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// Schema of the `/ServiceProviderConfig` document (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_URN: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// Builders used only to keep the tables below readable: every attribute
/// starts from the RFC 7643 §2.2 defaults (single-valued, optional,
/// caseExact false, readWrite, returned default, uniqueness none) and only
/// the deviations are spelled out.
impl AttributeDef {
    const fn of(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        AttributeDef {
            name,
            ty,
            multi_valued: false,
            description,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }

    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    const fn req(mut self) -> Self {
        self.required = true;
        self
    }

    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    const fn mutab(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }

    const fn ret(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }

    const fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }

    const fn canonical(mut self, v: &'static [&'static str]) -> Self {
        self.canonical_values = v;
        self
    }

    const fn refs(mut self, r: &'static [&'static str]) -> Self {
        self.reference_types = r;
        self
    }

    const fn subs(mut self, s: &'static [AttributeDef]) -> Self {
        self.sub_attributes = s;
        self
    }
}

const fn string(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::of(name, AttrType::String, description)
}

const fn boolean(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::of(name, AttrType::Boolean, description)
}

const fn date_time(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::of(name, AttrType::DateTime, description)
}

const fn reference(
    name: &'static str,
    types: &'static [&'static str],
    description: &'static str,
) -> AttributeDef {
    AttributeDef::of(name, AttrType::Reference, description).refs(types)
}

const fn complex(
    name: &'static str,
    subs: &'static [AttributeDef],
    description: &'static str,
) -> AttributeDef {
    AttributeDef::of(name, AttrType::Complex, description).subs(subs)
}

/// The `display` / `type` / `primary` trio shared by the RFC 7643 §2.4
/// multi-valued attributes.
const fn mv_display(what: &'static str) -> AttributeDef {
    string("display", what)
}

const fn mv_primary(what: &'static str) -> AttributeDef {
    boolean("primary", what)
}

/// Attributes every resource has (RFC 7643 §3.1). They belong to no schema,
/// so `/Schemas` does not list them.
pub static COMMON_ATTRIBUTES: &[AttributeDef] = &[
    string(
        "id",
        "Unique identifier for the SCIM resource as defined by the service provider.",
    )
    .exact()
    .mutab(Mutability::ReadOnly)
    .ret(Returned::Always)
    .unique(Uniqueness::Server),
    string(
        "externalId",
        "Identifier for the resource as defined by the provisioning client.",
    )
    .exact(),
    complex(
        "meta",
        &[
            string("resourceType", "The name of the resource type of the resource.")
                .exact()
                .mutab(Mutability::ReadOnly),
            date_time("created", "The DateTime that the resource was added to the service provider.")
                .mutab(Mutability::ReadOnly),
            date_time("lastModified", "The most recent DateTime that the details of this resource were updated at the service provider.")
                .mutab(Mutability::ReadOnly),
            reference("location", &["uri"], "The URI of the resource being returned.")
                .exact()
                .mutab(Mutability::ReadOnly),
            string("version", "The version (ETag) of the resource being returned.")
                .exact()
                .mutab(Mutability::ReadOnly),
        ],
        "Resource metadata maintained by the service provider.",
    )
    .mutab(Mutability::ReadOnly),
];

/// RFC 7643 §4.1 / §8.7.1.
pub static USER_SCHEMA: SchemaDef = SchemaDef {
    id: USER_URN,
    name: "User",
    description: "User Account",
    attributes: &[
        string("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.")
            .req()
            .unique(Uniqueness::Server),
        complex(
            "name",
            &[
                string("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
                string("familyName", "The family name of the User, or last name in most Western languages."),
                string("givenName", "The given name of the User, or first name in most Western languages."),
                string("middleName", "The middle name(s) of the User."),
                string("honorificPrefix", "The honorific prefix(es) of the User, or title in most Western languages."),
                string("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most Western languages."),
            ],
            "The components of the user's real name.",
        ),
        string("displayName", "The name of the User, suitable for display to end-users."),
        string("nickName", "The casual way to address the user in real life."),
        reference("profileUrl", &["external"], "A fully qualified URL pointing to a page representing the User's online profile."),
        string("title", "The user's title, such as \"Vice President\"."),
        string("userType", "Used to identify the relationship between the organization and the user."),
        string("preferredLanguage", "Indicates the User's preferred written or spoken language."),
        string("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
        string("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
        boolean("active", "A Boolean value indicating the User's administrative status."),
        string("password", "The User's cleartext password, used to set or compare the password; never returned.")
            .mutab(Mutability::WriteOnly)
            .ret(Returned::Never),
        complex(
            "emails",
            &[
                string("value", "Email addresses for the user."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.")
                    .canonical(&["work", "home", "other"]),
                mv_primary("A Boolean value indicating the 'primary' or preferred email address."),
            ],
            "Email addresses for the user.",
        )
        .multi(),
        complex(
            "phoneNumbers",
            &[
                string("value", "Phone number of the User."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.")
                    .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
                mv_primary("A Boolean value indicating the 'primary' or preferred phone number."),
            ],
            "Phone numbers for the User.",
        )
        .multi(),
        complex(
            "ims",
            &[
                string("value", "Instant messaging address for the User."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.")
                    .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
                mv_primary("A Boolean value indicating the 'primary' or preferred messenger."),
            ],
            "Instant messaging addresses for the User.",
        )
        .multi(),
        complex(
            "photos",
            &[
                reference("value", &["external"], "URL of a photo of the User."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.")
                    .canonical(&["photo", "thumbnail"]),
                mv_primary("A Boolean value indicating the 'primary' or preferred photo."),
            ],
            "URLs of photos of the User.",
        )
        .multi(),
        complex(
            "addresses",
            &[
                string("formatted", "The full mailing address, formatted for display or use with a mailing label."),
                string("streetAddress", "The full street address component."),
                string("locality", "The city or locality component."),
                string("region", "The state or region component."),
                string("postalCode", "The zip code or postal code component."),
                string("country", "The country name component."),
                string("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.")
                    .canonical(&["work", "home", "other"]),
                mv_primary("A Boolean value indicating the 'primary' or preferred mailing address."),
            ],
            "A physical mailing address for this User.",
        )
        .multi(),
        complex(
            "groups",
            &[
                string("value", "The identifier of the User's group.")
                    .mutab(Mutability::ReadOnly),
                reference("$ref", &["User", "Group"], "The URI of the corresponding 'Group' resource to which the user belongs.")
                    .mutab(Mutability::ReadOnly),
                string("display", "A human-readable name, primarily used for display purposes.")
                    .mutab(Mutability::ReadOnly),
                string("type", "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.")
                    .canonical(&["direct", "indirect"])
                    .mutab(Mutability::ReadOnly),
            ],
            "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.",
        )
        .multi()
        .mutab(Mutability::ReadOnly),
        complex(
            "entitlements",
            &[
                string("value", "The value of an entitlement."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function."),
                mv_primary("A Boolean value indicating the 'primary' or preferred attribute value."),
            ],
            "A list of entitlements for the User that represent a thing the User has.",
        )
        .multi(),
        complex(
            "roles",
            &[
                string("value", "The value of a role."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function."),
                mv_primary("A Boolean value indicating the 'primary' or preferred attribute value."),
            ],
            "A list of roles for the User that collectively represent who the User is, e.g., 'Student', 'Faculty'.",
        )
        .multi(),
        complex(
            "x509Certificates",
            &[
                AttributeDef::of("value", AttrType::Binary, "The value of an X.509 certificate."),
                mv_display("A human-readable name, primarily used for display purposes."),
                string("type", "A label indicating the attribute's function."),
                mv_primary("A Boolean value indicating the 'primary' or preferred attribute value."),
            ],
            "A list of certificates issued to the User.",
        )
        .multi(),
    ],
};

/// RFC 7643 §4.3 / §8.7.1.
pub static ENTERPRISE_USER_SCHEMA: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            &[
                string("value", "The id of the SCIM resource representing the User's manager."),
                reference("$ref", &["User"], "The URI of the SCIM resource representing the User's manager."),
                string("displayName", "The displayName of the User's manager.")
                    .mutab(Mutability::ReadOnly),
            ],
            "The User's manager.",
        ),
    ],
};

/// Atlassian's extension: the id of the Atlassian account linked to the
/// provisioned user. The server assigns it, so clients can only read it.
pub static ATLASSIAN_EXTERNAL_SCHEMA: SchemaDef = SchemaDef {
    id: ATLASSIAN_EXTERNAL_URN,
    name: "AtlassianExternalUser",
    description: "Atlassian external user extension",
    attributes: &[string(
        "atlassianAccountId",
        "The Atlassian account id linked to this user.",
    )
    .mutab(Mutability::ReadOnly)],
};

/// RFC 7643 §4.2 / §8.7.1. `displayName` is required and unique here
/// (the RFC leaves both open) because Atlassian identifies groups by name.
pub static GROUP_SCHEMA: SchemaDef = SchemaDef {
    id: GROUP_URN,
    name: "Group",
    description: "Group",
    attributes: &[
        string("displayName", "A human-readable name for the Group.")
            .req()
            .unique(Uniqueness::Server),
        complex(
            "members",
            &[
                string("value", "Identifier of the member of this Group.")
                    .mutab(Mutability::Immutable),
                reference(
                    "$ref",
                    &["User", "Group"],
                    "The URI corresponding to a SCIM resource that is a member of this Group.",
                )
                .mutab(Mutability::Immutable),
                string(
                    "display",
                    "A human-readable name, primarily used for display purposes.",
                )
                .mutab(Mutability::ReadOnly),
                string(
                    "type",
                    "A label indicating the type of resource, e.g., 'User' or 'Group'.",
                )
                .canonical(&["User", "Group"])
                .mutab(Mutability::Immutable),
            ],
            "A list of members of the Group.",
        )
        .multi(),
    ],
};

/// The `/Users` resource type.
pub static USER_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_SCHEMA,
    extensions: &[
        (&ENTERPRISE_USER_SCHEMA, false),
        (&ATLASSIAN_EXTERNAL_SCHEMA, false),
    ],
};

/// The `/Groups` resource type.
pub static GROUP_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP_SCHEMA,
    extensions: &[],
};

/// Every schema served under `/Schemas`, core schemas first.
pub fn all_schemas() -> [&'static SchemaDef; 4] {
    [
        &USER_SCHEMA,
        &GROUP_SCHEMA,
        &ENTERPRISE_USER_SCHEMA,
        &ATLASSIAN_EXTERNAL_SCHEMA,
    ]
}

/// Every resource type served under `/ResourceTypes`.
pub fn all_resource_types() -> [&'static ResourceTypeDef; 2] {
    [&USER_RESOURCE, &GROUP_RESOURCE]
}

// ---------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------

/// Attribute names are case-insensitive (RFC 7643 §2.1).
fn find_attr(attrs: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Looks `name` up among the common attributes (`id`, `externalId`, `meta`).
pub fn common_attr(name: &str) -> Option<&'static AttributeDef> {
    find_attr(COMMON_ATTRIBUTES, name)
}

impl SchemaDef {
    /// The attribute called `name`, compared case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&'static AttributeDef> {
        find_attr(self.attributes, name)
    }
}

impl AttributeDef {
    /// The sub-attribute called `name`, compared case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&'static AttributeDef> {
        find_attr(self.sub_attributes, name)
    }

    /// Neither stored from client input nor settable by it.
    pub fn is_read_only(&self) -> bool {
        self.mutability == Mutability::ReadOnly
    }
}

/// An attribute path resolved against a resource type.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    /// The schema the attribute belongs to; `None` for the common attributes
    /// (`id`, `externalId`, `meta`), which belong to no schema.
    pub schema: Option<&'static SchemaDef>,
    pub attr: &'static AttributeDef,
    pub sub: Option<&'static AttributeDef>,
}

impl Resolved {
    /// Whether the attribute lives in an extension (and so is nested under
    /// the extension's URN in documents).
    pub fn is_extension(&self, rt: &ResourceTypeDef) -> bool {
        self.schema.is_some_and(|s| !std::ptr::eq(s, rt.schema))
    }
}

impl ResourceTypeDef {
    /// The core schema followed by the extension schemas.
    pub fn schemas(&self) -> impl Iterator<Item = &'static SchemaDef> {
        let extensions = self.extensions;
        std::iter::once(self.schema).chain(extensions.iter().map(|(s, _)| *s))
    }

    /// The extension schema with this URN (case-insensitive), if this
    /// resource type has it.
    pub fn extension(&self, urn: &str) -> Option<&'static SchemaDef> {
        let extensions = self.extensions;
        extensions
            .iter()
            .map(|(s, _)| *s)
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The extension attribute called `name`, if exactly one extension has
    /// one.
    fn unique_extension_attr(
        &self,
        name: &str,
    ) -> Option<(Option<&'static SchemaDef>, &'static AttributeDef)> {
        let mut found = self
            .extensions
            .iter()
            .filter_map(|(s, _)| s.attr(name).map(|d| (Some(*s), d)));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// The core schema or an extension with this URN (case-insensitive).
    pub fn schema_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.schemas().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves `[urn:]attr[.sub]`: the one place where filters, PATCH
    /// paths and the SQL compiler turn attribute names into definitions.
    ///
    /// RFC 7644 §3.10 lets clients omit the core schema's URN and asks them
    /// (SHOULD, not MUST) to qualify extension attributes. So an unqualified
    /// name is looked up in the common attributes, then the core schema, and
    /// only then in the extensions, where it must name exactly one
    /// attribute: `department` finds the enterprise attribute, while a name
    /// two extensions share resolves to nothing rather than to a guess. A
    /// URN must name the core schema (which also reaches the common
    /// attributes, since some clients qualify `externalId` that way) or one
    /// of this type's extensions.
    pub fn resolve(&self, urn: Option<&str>, attr: &str, sub: Option<&str>) -> Option<Resolved> {
        let (schema, def) = match urn {
            None => match common_attr(attr) {
                Some(d) => (None, d),
                None => match self.schema.attr(attr) {
                    Some(d) => (Some(self.schema), d),
                    None => self.unique_extension_attr(attr)?,
                },
            },
            Some(u) => {
                let s = self.schema_by_urn(u)?;
                match s.attr(attr) {
                    Some(d) => (Some(s), d),
                    None if std::ptr::eq(s, self.schema) => (None, common_attr(attr)?),
                    None => return None,
                }
            }
        };
        let sub = match sub {
            None => None,
            Some(name) => Some(def.sub(name)?),
        };
        Some(Resolved {
            schema,
            attr: def,
            sub,
        })
    }
}

// ---------------------------------------------------------------------------
// Discovery documents (RFC 7643 §5, §6, §7)
// ---------------------------------------------------------------------------

impl AttrType {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

impl Mutability {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

impl Returned {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

impl Uniqueness {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

fn base(location_base: &str) -> &str {
    location_base.trim_end_matches('/')
}

/// One attribute definition as RFC 7643 §7 describes it. Every
/// characteristic is spelled out, even defaults, so clients never have to
/// know the defaults.
pub fn attribute_json(a: &AttributeDef) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), a.name.into());
    o.insert("type".into(), a.ty.as_str().into());
    o.insert("multiValued".into(), a.multi_valued.into());
    o.insert("description".into(), a.description.into());
    o.insert("required".into(), a.required.into());
    o.insert("caseExact".into(), a.case_exact.into());
    o.insert("mutability".into(), a.mutability.as_str().into());
    o.insert("returned".into(), a.returned.as_str().into());
    o.insert("uniqueness".into(), a.uniqueness.as_str().into());
    if !a.canonical_values.is_empty() {
        o.insert("canonicalValues".into(), a.canonical_values.into());
    }
    if a.ty == AttrType::Reference {
        o.insert("referenceTypes".into(), a.reference_types.into());
    }
    if a.ty == AttrType::Complex {
        let subs: Vec<Value> = a.sub_attributes.iter().map(attribute_json).collect();
        o.insert("subAttributes".into(), subs.into());
    }
    Value::Object(o)
}

/// A `/Schemas/{id}` document. `location_base` is the SCIM base URL, e.g.
/// `https://host/scim/v2`.
pub fn schema_json(s: &SchemaDef, location_base: &str) -> Value {
    let attributes: Vec<Value> = s.attributes.iter().map(attribute_json).collect();
    json!({
        "schemas": [SCHEMA_URN],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base(location_base), s.id),
        },
    })
}

/// A `/ResourceTypes/{name}` document.
pub fn resource_type_json(rt: &ResourceTypeDef, location_base: &str) -> Value {
    let mut v = json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", base(location_base), rt.name),
        },
    });
    // RFC 7643 §8.6 omits the key for types without extensions.
    if !rt.extensions.is_empty() {
        let ext: Vec<Value> = rt
            .extensions
            .iter()
            .map(|(s, required)| json!({ "schema": s.id, "required": required }))
            .collect();
        if let Some(o) = v.as_object_mut() {
            o.insert("schemaExtensions".into(), ext.into());
        }
    }
    v
}

/// What the server supports, for `/ServiceProviderConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceProviderFeatures {
    pub patch: bool,
    /// `(maxOperations, maxPayloadSize)`; `None` when bulk is unsupported.
    pub bulk: Option<(u32, u64)>,
    pub filter_max_results: u32,
    pub change_password: bool,
    pub sort: bool,
    pub etag: bool,
    /// Seconds a paging cursor stays valid: RFC 9865's `cursorTimeout`.
    pub cursor_timeout_seconds: u64,
}

/// The `/ServiceProviderConfig` document (RFC 7643 §5). Filtering is always
/// supported; `filter_max_results` caps page sizes.
pub fn service_provider_config_json(c: &ServiceProviderFeatures, location_base: &str) -> Value {
    let (bulk_ops, bulk_payload) = c.bulk.unwrap_or((0, 0));
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
        "patch": { "supported": c.patch },
        "bulk": {
            "supported": c.bulk.is_some(),
            "maxOperations": bulk_ops,
            "maxPayloadSize": bulk_payload,
        },
        "filter": { "supported": true, "maxResults": c.filter_max_results },
        "changePassword": { "supported": c.change_password },
        "sort": { "supported": c.sort },
        "etag": { "supported": c.etag },
        // RFC 9865 §4: both paging methods, index by default (§2.4: the
        // default of a server that paged by index before); pages of
        // `count` up to `maxResults`.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": crate::scim::list::DEFAULT_PAGE_SIZE.min(c.filter_max_results),
            "maxPageSize": c.filter_max_results,
            "cursorTimeout": c.cursor_timeout_seconds,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with the directory's API key as a bearer token",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(location_base)),
        },
    })
}

#[cfg(test)]
mod tests;
