//! Which compose service a task definition's container runs: the service of the same name, or
//! the one whose `x-wharf.ecs_container` names it (that one wins).

use crate::DeployError;
use indexmap::IndexMap;

/// The container → service rules of a project.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// Services by name.
    services: Vec<String>,
    /// Containers named by `x-wharf.ecs_container`, with their service.
    named: IndexMap<String, String>,
}

impl Matcher {
    /// The rules for `services`, each with the container names its `x-wharf.ecs_container`
    /// gives (none: only its own name).
    pub fn new<'a>(
        services: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<Matcher, DeployError> {
        let mut m = Matcher::default();
        for (service, containers) in services {
            m.services.push(service.to_string());
            for c in containers {
                if let Some(first) = m.named.get(c) {
                    if first != service {
                        return Err(DeployError::ContainerClaimedTwice {
                            container: c.clone(),
                            first: first.clone(),
                            second: service.to_string(),
                        });
                    }
                }
                m.named.insert(c.clone(), service.to_string());
            }
        }
        Ok(m)
    }

    /// The service `container` runs, if any.
    pub fn service_of(&self, container: &str) -> Option<&str> {
        self.named
            .get(container)
            .or_else(|| self.services.iter().find(|s| s.as_str() == container))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_containers_win_over_names() {
        let web = vec!["web".to_string(), "migrate".to_string()];
        let m = Matcher::new([
            ("api", web.as_slice()),
            ("web", &[][..]),
            ("worker", &[][..]),
        ])
        .unwrap();
        assert_eq!(m.service_of("web"), Some("api"));
        assert_eq!(m.service_of("migrate"), Some("api"));
        assert_eq!(m.service_of("api"), Some("api"));
        assert_eq!(m.service_of("worker"), Some("worker"));
        assert_eq!(m.service_of("envoy"), None);
    }

    #[test]
    fn a_container_claimed_twice_is_an_error() {
        let c = vec!["app".to_string()];
        let e = Matcher::new([("api", c.as_slice()), ("web", c.as_slice())]).unwrap_err();
        assert!(e.is_usage());
        assert!(e.to_string().contains("`app`"), "{e}");
    }
}
