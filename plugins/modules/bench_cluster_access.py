"""Reach a cluster's API server from the controller as kubernetes.core does, but within a bound, so that a bad
kubeconfig, context or server stops a run before it creates anything, with a message that names what is wrong."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import urllib3
    import yaml
    from kubernetes import client as kube_client
    from kubernetes.config import ConfigException, incluster_config, kube_config
except ImportError:
    HAS_KUBERNETES = False
else:
    HAS_KUBERNETES = True

DOCUMENTATION = r"""
module: bench_cluster_access
short_description: Check that a kubeconfig and its context reach the cluster's API server, within a bound
version_added: "0.7.0"
description:
  - Reads the kubeconfig with the C(kubernetes) client's own loader, as C(kubernetes.core) does (the same
    defaults, the same merge of C(KUBECONFIG)'s files), takes its context and asks the API server for
    C(/version), once, within O(timeout) seconds.
  - C(kubernetes.core)'s modules have no request timeout, so an API server that accepts connections but never
    answers holds their first call as long as TCP keeps the connection; this module answers within the bound.
  - Bad input is not a failure of the module; it returns RV(problem) and RV(setting), so that the caller can
    name the variable its user sets. The module fails only when it cannot run (no C(kubernetes) library).
  - Changes nothing, on the cluster or in the kubeconfig (no credentials are written back).
options:
  kubeconfig:
    description:
      - The kubeconfig's path (or paths, separated by V(:), as in C(KUBECONFIG)).
      - Empty, as C(kubernetes.core)'s modules do, C(K8S_AUTH_KUBECONFIG); then the service account of a
        controller that runs in a pod; then C(KUBECONFIG) or C(~/.kube/config).
    type: str
    default: ""
  context:
    description: The kubeconfig's context; empty, C(K8S_AUTH_CONTEXT), then the kubeconfig's current context.
    type: str
    default: ""
  timeout:
    description: Seconds the API server has to answer, connection included.
    type: float
    default: 10
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements: [kubernetes]
author: netlab
"""

EXAMPLES = r"""
- name: Reach the cluster's API server
  netlab.lab.bench_cluster_access:
    kubeconfig: ~/.kube/config
    context: lab
  register: access

- name: Stop on a kubeconfig, a context or a server that cannot be used
  ansible.builtin.assert:
    that: access.problem | length == 0
    fail_msg: "{{ access.problem }} (fix {{ access.setting }})"
"""

RETURN = r"""
problem:
  description: What stops the kubeconfig, its context or its server from being used; empty when the server answered.
  returned: always
  type: str
  sample: the API server https://192.0.2.10:6443 (context lab) did not answer within 10 s
setting:
  description: What to change for RV(problem), V(kubeconfig), V(context) or V(server); empty when there is none.
  returned: always
  type: str
kubeconfig:
  description: The kubeconfig read (empty for a service account).
  returned: always
  type: str
context:
  description: The context taken.
  returned: when the kubeconfig was read
  type: str
server:
  description: The API server's URL.
  returned: when the context names a cluster
  type: str
version:
  description: The API server's C(gitVersion).
  returned: when the server answered
  type: str
  sample: v1.33.5+rke2r1
"""


class AccessProblem(Exception):
    """Bad input: ``setting`` is what to change (kubeconfig, context or server)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def load(kubeconfig: str, context: str) -> tuple[Any, dict[str, str]]:
    """The client's configuration for the kubeconfig and context, with what was read."""
    configuration = kube_client.Configuration()
    if not kubeconfig and not context:
        # kubernetes.core's order: a service account first, when the controller runs in a pod.
        try:
            incluster_config.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            pass
        else:
            return configuration, {"kubeconfig": ""}
    path = kubeconfig or kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    if not any(os.path.exists(os.path.expanduser(p)) for p in path.split(os.pathsep) if p):
        raise AccessProblem("kubeconfig", f"the kubeconfig {path} does not exist")
    try:
        merged = kube_config.KubeConfigMerger(path).config
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise AccessProblem("kubeconfig", f"the kubeconfig {path} does not parse as YAML: "
                                          f"{getattr(exc, 'problem', None) or exc}{where}") from None
    except ConfigException:
        raise AccessProblem("kubeconfig", f"the kubeconfig {path} is empty") from None
    except OSError as exc:
        raise AccessProblem("kubeconfig", f"the kubeconfig {path} cannot be read: {exc.strerror}") from None
    except (AttributeError, TypeError):  # YAML, but a list or a scalar where the loader wants a mapping
        raise AccessProblem("kubeconfig", f"the kubeconfig {path} is not a kubeconfig (a mapping with "
                                          "clusters, contexts and users)") from None
    read = {"kubeconfig": path}
    names = [str(getattr(item, "value", item).get("name")) for item in merged.value.get("contexts") or []]
    known = f"its contexts: {', '.join(names) or 'none'}"
    if context and context not in names:
        raise AccessProblem("context", f"the kubeconfig {path} has no context {context} ({known})")
    if not context and not merged.value.get("current-context"):
        raise AccessProblem("context", f"the kubeconfig {path} has no current context ({known})")
    read["context"] = context or str(merged.value["current-context"])
    try:
        kube_config.KubeConfigLoader(config_dict=merged, active_context=read["context"]).load_and_set(configuration)
    except (ConfigException, ValueError, OSError) as exc:  # a cluster or user it lacks, a certificate file
        detail = str(exc).removeprefix("Invalid kube-config file. ")
        raise AccessProblem("kubeconfig", f"the kubeconfig {path}, context {read['context']}: {detail}") from None
    return configuration, read


def ask_version(configuration: Any, timeout: float, server: str) -> str:
    """The server's gitVersion, asked once within ``timeout`` seconds; AccessProblem says why there is none,
    naming the ``server`` (its URL and where it was read)."""
    configuration.retries = False  # one request: the bound is the caller's, and urllib3 would retry three times
    try:
        with kube_client.ApiClient(configuration) as api:
            # The raw answer: the client's model wants every field of version.Info, a server may leave some out.
            answer = kube_client.VersionApi(api).get_code(_request_timeout=timeout, _preload_content=False)
            return str(json.loads(answer.data).get("gitVersion", ""))
    except kube_client.ApiException as exc:
        reason = str(exc.reason).replace("\n", ": ")
        why = f"answered {exc.status} {reason}" if exc.status else f"failed: {reason}"
    except urllib3.exceptions.NewConnectionError as exc:
        cause = exc.__cause__ or exc.__context__
        why = "refused the connection" if isinstance(cause, ConnectionRefusedError) else f"cannot be reached: {exc}"
    except urllib3.exceptions.TimeoutError:
        why = f"did not answer within {timeout:g} s"
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:  # ValueError: an answer that is no JSON
        why = f"cannot be reached: {exc}"
    raise AccessProblem("server", f"{server} {why}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kubeconfig": {"type": "str", "default": ""},
            "context": {"type": "str", "default": ""},
            "timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    kubeconfig = module.params["kubeconfig"] or os.environ.get("K8S_AUTH_KUBECONFIG", "")
    context = module.params["context"] or os.environ.get("K8S_AUTH_CONTEXT", "")
    result: dict[str, Any] = {"changed": False, "problem": "", "setting": "", "kubeconfig": kubeconfig}
    try:
        configuration, read = load(kubeconfig, context)
        result.update(read, server=configuration.host)
        where = f"context {read['context']} of {read['kubeconfig']}" if read["kubeconfig"] else "service account"
        server = f"the API server {configuration.host} ({where})"
        result["version"] = ask_version(configuration, module.params["timeout"], server)
    except AccessProblem as exc:
        result.update(problem=str(exc), setting=exc.setting)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
