"""The tf.distribute side of a run: the strategy, the chief, lost peers."""

from __future__ import annotations

import json
import os
import re

import tensorflow as tf

from kerasblocks.training.errors import UserInputError

# The errors a collective raises when a peer worker died or hung.
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.InternalError,
)


def build_strategy(
    name: str, *, collective_timeout: float = 45.0
) -> tf.distribute.Strategy:
    """A tf.distribute strategy by `--strategy` name.

    Args:
        name: default, mirrored, one_device, multi_worker or tpu.
        collective_timeout: seconds a multi-worker collective waits for
            its peers before the run stops (so a lost worker is noticed).
    """
    from kerasblocks.devices import strategy

    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise UserInputError(
                "--strategy=multi_worker needs TF_CONFIG describing the "
                "cluster and this worker's task."
            )
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=collective_timeout
        )
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=options
        )
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as error:
            raise UserInputError(
                f"--strategy=tpu: no TPU found ({error})"
            ) from None
        return tf.distribute.TPUStrategy(resolver)
    return strategy(name)


def task_name(strategy: tf.distribute.Strategy) -> str:
    """ "worker-1" under a cluster, "local-0" otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local-0"
    return f"{resolver.task_type}-{resolver.task_id}"


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def is_multi_worker(strategy: tf.distribute.Strategy | None) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def describe_peer_failure(error: BaseException) -> str:
    """One line naming the peer a multi-worker run lost (from the error,
    or else every other task of TF_CONFIG)."""
    text = str(error)
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}")
    me = cluster.get("task", {})
    peers = [
        f"{kind} {index} ({address})"
        for kind, addresses in cluster.get("cluster", {}).items()
        for index, address in enumerate(addresses)
        if not (kind == me.get("type") and index == me.get("index"))
    ]
    named = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text)
    named = [
        p
        for p in peers
        if any(p.startswith(f"{job} {task} ") for job, task in named)
    ]
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    who = ", ".join(named or peers) or "a peer"
    return (
        f"lost contact with {who}: a collective failed or timed out "
        f"({type(error).__name__}: {first})"
    )
