"""Documentation of the action plugin netlab.lab.kube_exec (plugins/action/kube_exec.py)."""

DOCUMENTATION = r"""
module: kube_exec
short_description: Run a command in a pod through the API server's exec, bounded, from the controller
version_added: "0.7.1"
description:
  - Runs O(command) in a container of a pod as C(kubernetes.core.k8s_exec) does (the kubernetes client's exec
    stream over WebSocket, the client built by kubernetes.core's own factory from O(kubeconfig) and
    O(context) or the C(K8S_AUTH_*) environment) and returns the same C(stdout), C(stderr), C(rc) and
    C(return_code).
  - Unlike k8s_exec it has a deadline (O(seconds)); the stream is closed when it passes, which ends the
    runtime's exec. An exec that ends without an exit code (the runtime's error, a lost connection)
    is a failure with the cluster's words in C(msg), where k8s_exec crashes.
  - An action plugin, so it runs in the controller's process, with no module process to start per exec.
  - The task fails when the command exits non-zero or has no exit code.
options:
  namespace:
    description: The pod's namespace.
    type: str
    required: true
  pod:
    description: The pod's name.
    type: str
    required: true
  container:
    description: The container to run the command in.
    type: str
    required: true
  command:
    description: The command, split as a shell would (C(shlex)), or a list of arguments. Run without a shell.
    type: raw
    required: true
  seconds:
    description:
      - Longest the exec may take, in seconds. Without it, the task's C(timeout) keyword, else 30.
    type: float
  kubeconfig:
    description:
      - Path of the kubeconfig; empty for kubernetes.core's default (C(K8S_AUTH_KUBECONFIG), C(~/.kube/config)).
    type: path
  context:
    description: Context of the kubeconfig; empty for its current context.
    type: str
attributes:
  check_mode:
    description: Runs in check mode, as k8s_exec does (the role's execs only read).
    support: full
notes:
  - The controller's Python needs the C(kubernetes) package, as kubernetes.core's modules do.
seealso:
  - module: kubernetes.core.k8s_exec
"""

EXAMPLES = r"""
- name: Read the iperf3 version in the client pod
  netlab.lab.kube_exec:
    namespace: netlab-bench-20261206t104824z
    pod: iperf3-client
    container: iperf3
    command: sh -c 'exec timeout 15 "$@"' sh iperf3 --version
    seconds: 30
  register: version
  ignore_errors: true
"""

RETURN = r"""
stdout:
  description: What the command printed on its standard output.
  type: str
  returned: always
stderr:
  description: What the command printed on its standard error.
  type: str
  returned: always
rc:
  description: The command's exit code; null when it has none (see RV(msg)).
  type: int
  returned: always
return_code:
  description: The same as RV(rc), as k8s_exec returns it.
  type: int
  returned: always
msg:
  description: Why the command failed or has no exit code.
  type: str
  returned: failure
"""
