//! The declaration in `roles/`: which roles exist, what each may do, and the
//! row-level security policies. Embedded in the binary at build time, so a
//! release provisions exactly what it was tested with.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The schemas stockops owns and reconciles completely.
pub const MANAGED_SCHEMAS: [&str; 3] = ["inventory", "api", "audit"];

const ROLES_TOML: &str = include_str!("../../../roles/roles.toml");
const GRANTS_TOML: &str = include_str!("../../../roles/grants.toml");
const POLICIES_TOML: &str = include_str!("../../../roles/policies.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDecl {
    pub comment: Option<String>,
    #[serde(default)]
    pub login: bool,
    #[serde(default)]
    pub superuser: bool,
    #[serde(default)]
    pub createdb: bool,
    #[serde(default)]
    pub createrole: bool,
    #[serde(default)]
    pub replication: bool,
    #[serde(default)]
    pub bypassrls: bool,
    #[serde(default = "yes")]
    pub inherit: bool,
    /// A group whose members are login roles made by `stockops users add`.
    #[serde(default)]
    pub group: bool,
    /// For partner groups: the kind of partner each member is bound to.
    pub partner: Option<Partner>,
    #[serde(default)]
    pub member_of: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partner {
    Reseller,
    Supplier,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    role: BTreeMap<String, RoleDecl>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseGrants {
    #[serde(default)]
    pub connect: Vec<String>,
    #[serde(default)]
    pub create: Vec<String>,
    #[serde(default)]
    pub temporary: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaGrants {
    #[serde(default)]
    pub usage: Vec<String>,
    #[serde(default)]
    pub create: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableGrants {
    #[serde(default)]
    pub select: Vec<String>,
    #[serde(default)]
    pub insert: Vec<String>,
    #[serde(default)]
    pub update: Vec<String>,
    #[serde(default)]
    pub delete: Vec<String>,
    #[serde(default)]
    pub truncate: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub trigger: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionGrants {
    #[serde(default)]
    pub execute: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    owner: String,
    #[serde(default)]
    database: DatabaseGrants,
    #[serde(default)]
    schema: BTreeMap<String, SchemaGrants>,
    #[serde(default)]
    table: BTreeMap<String, TableGrants>,
    #[serde(default)]
    function: BTreeMap<String, FunctionGrants>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecl {
    #[serde(default = "all")]
    pub command: String,
    pub to: Vec<String>,
    pub using: Option<String>,
    pub check: Option<String>,
}

fn all() -> String {
    "all".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TablePolicies {
    #[serde(default)]
    policy: BTreeMap<String, PolicyDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoliciesFile {
    #[serde(default)]
    table: BTreeMap<String, TablePolicies>,
}

/// A privilege declared on one object: (object kind, object name, privilege) → grantees.
pub type Wanted = BTreeMap<(ObjectKind, String, String), BTreeSet<String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Database,
    Schema,
    Table,
    Sequence,
    Function,
}

impl ObjectKind {
    /// The keyword GRANT and REVOKE use.
    pub fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Database => "DATABASE",
            ObjectKind::Schema => "SCHEMA",
            ObjectKind::Table => "TABLE",
            ObjectKind::Sequence => "SEQUENCE",
            ObjectKind::Function => "FUNCTION",
        }
    }
}

/// The whole declaration, validated.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub roles: BTreeMap<String, RoleDecl>,
    pub owner: String,
    pub database: DatabaseGrants,
    pub schemas: BTreeMap<String, SchemaGrants>,
    pub tables: BTreeMap<String, TableGrants>,
    pub functions: BTreeMap<String, FunctionGrants>,
    /// table → policy name → policy.
    pub policies: BTreeMap<String, BTreeMap<String, PolicyDecl>>,
}

impl Declaration {
    /// The declaration shipped with this binary.
    pub fn embedded() -> anyhow::Result<Self> {
        Self::parse(ROLES_TOML, GRANTS_TOML, POLICIES_TOML)
    }

    pub fn parse(roles: &str, grants: &str, policies: &str) -> anyhow::Result<Self> {
        let roles: RolesFile = toml::from_str(roles).context("roles/roles.toml")?;
        let grants: GrantsFile = toml::from_str(grants).context("roles/grants.toml")?;
        let policies: PoliciesFile = toml::from_str(policies).context("roles/policies.toml")?;
        let decl = Declaration {
            roles: roles.role,
            owner: grants.owner,
            database: grants.database,
            schemas: grants.schema,
            tables: grants.table,
            functions: grants.function,
            policies: policies
                .table
                .into_iter()
                .map(|(t, p)| (t, p.policy))
                .collect(),
        };
        decl.validate()?;
        Ok(decl)
    }

    /// Group roles whose members `stockops users` manages.
    pub fn groups(&self) -> impl Iterator<Item = (&String, &RoleDecl)> {
        self.roles.iter().filter(|(_, r)| r.group)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !self.roles.contains_key(&self.owner) {
            bail!(
                "roles/grants.toml: owner {} is not declared in roles/roles.toml",
                self.owner
            );
        }
        for (name, role) in &self.roles {
            if role.group && role.login {
                bail!("roles/roles.toml: role {name} is a group and cannot have login = true");
            }
        }
        for (key, grantees) in self.wanted() {
            for grantee in grantees {
                if !self.roles.contains_key(&grantee) {
                    bail!(
                        "roles/grants.toml: {} on {} {} is granted to {grantee}, which roles/roles.toml does not declare",
                        key.2,
                        key.0.keyword().to_lowercase(),
                        key.1
                    );
                }
            }
        }
        for (table, policies) in &self.policies {
            check_managed(table)?;
            for (name, policy) in policies {
                for role in &policy.to {
                    if !self.roles.contains_key(role) {
                        bail!("roles/policies.toml: policy {name} on {table} is for {role}, which roles/roles.toml does not declare");
                    }
                }
                if !["all", "select", "insert", "update", "delete"]
                    .contains(&policy.command.as_str())
                {
                    bail!(
                        "roles/policies.toml: policy {name} on {table}: unknown command {}",
                        policy.command
                    );
                }
            }
        }
        for name in self.tables.keys().chain(self.functions.keys()) {
            check_managed(name)?;
        }
        Ok(())
    }

    /// Every declared privilege, keyed by object and privilege.
    pub fn wanted(&self) -> Wanted {
        let mut w = Wanted::new();
        let mut put = |kind, object: &str, privilege: &str, roles: &[String]| {
            let set = w
                .entry((kind, object.to_string(), privilege.to_string()))
                .or_default();
            set.extend(roles.iter().cloned());
        };
        put(ObjectKind::Database, "", "CONNECT", &self.database.connect);
        put(ObjectKind::Database, "", "CREATE", &self.database.create);
        put(
            ObjectKind::Database,
            "",
            "TEMPORARY",
            &self.database.temporary,
        );
        for (schema, g) in &self.schemas {
            put(ObjectKind::Schema, schema, "USAGE", &g.usage);
            put(ObjectKind::Schema, schema, "CREATE", &g.create);
        }
        for (table, g) in &self.tables {
            for (privilege, roles) in [
                ("SELECT", &g.select),
                ("INSERT", &g.insert),
                ("UPDATE", &g.update),
                ("DELETE", &g.delete),
                ("TRUNCATE", &g.truncate),
                ("REFERENCES", &g.references),
                ("TRIGGER", &g.trigger),
            ] {
                put(ObjectKind::Table, table, privilege, roles);
            }
        }
        for (function, g) in &self.functions {
            put(ObjectKind::Function, function, "EXECUTE", &g.execute);
        }
        w.retain(|_, roles| !roles.is_empty());
        w
    }
}

fn check_managed(qualified: &str) -> anyhow::Result<()> {
    match qualified.split_once('.') {
        Some((schema, _)) if MANAGED_SCHEMAS.contains(&schema) => Ok(()),
        _ => bail!("roles/: {qualified} must be schema-qualified in one of {MANAGED_SCHEMAS:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_declaration_is_valid() {
        let d = Declaration::embedded().unwrap();
        assert_eq!(d.owner, "inventory_owner");
        for role in [
            "inventory_owner",
            "dept_stock",
            "dept_sales",
            "dept_purchasing",
            "dept_reporting",
            "dept_audit",
            "etl",
            "reseller",
            "supplier",
            "stockops_backup",
            "stockops_monitor",
        ] {
            assert!(d.roles.contains_key(role), "{role} declared");
        }
        assert!(!d.roles["inventory_owner"].login);
    }

    #[test]
    fn department_roles_get_no_table_privilege() {
        let d = Declaration::embedded().unwrap();
        for ((kind, object, privilege), roles) in d.wanted() {
            if kind == ObjectKind::Table {
                for r in roles {
                    assert!(
                        r == "reseller" || r == "supplier",
                        "{privilege} on {object} to {r}"
                    );
                    assert_eq!(privilege, "SELECT");
                }
            }
        }
    }

    #[test]
    fn undeclared_grantee_is_refused() {
        let grants = GRANTS_TOML.replace("select = [\"reseller\"]", "select = [\"nobody\"]");
        let err = Declaration::parse(ROLES_TOML, &grants, POLICIES_TOML).unwrap_err();
        assert!(err.to_string().contains("nobody"), "{err}");
    }
}
