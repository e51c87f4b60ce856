"""podrunner: runs the pods scheduled on one fake node as local processes.

kwok fakes every other node; this package owns one node of its own and makes the pods bound
to it real: each container's command runs as a local process with the pod's env, volumes
materialised under a per-pod directory, a real service-account token and a kubeconfig, and
the process state is reported back into the pod status. See README.md in this folder for
the conventions a program running under it can rely on.
"""

NODE_LABEL = "tradebot.io/pod-runner"
NODE_TAINT_KEY = "tradebot.io/pod-runner"
