"""Condition types and reasons (CamelCase, as the API conventions want)."""

from __future__ import annotations

from typing import Final

# Every kind: Ready (True: current, as kstatus reads it) and Stalled (True only while the
# object cannot progress without a change; absent otherwise, kstatus' abnormal-true style)
STALLED: Final = "Stalled"

# TrainingJob condition types
DATA_VALIDATED: Final = "DataValidated"
COMPLETE: Final = "Complete"
FAILED: Final = "Failed"
SCHEDULED: Final = "Scheduled"
REGISTERED: Final = "Registered"

# ModelVersion condition types
VERIFIED: Final = "Verified"
READY: Final = "Ready"

# Reasons
WAITING_FOR_POD: Final = "WaitingForPod"
UNSCHEDULABLE: Final = "Unschedulable"
COMPUTE_POOL_NOT_FOUND: Final = "ComputePoolNotFound"
# The named ComputePool's spec.namespaces does not list the resource's namespace.
COMPUTE_POOL_NOT_ALLOWED: Final = "ComputePoolNotAllowed"
# spec.baseline.modelVersion names a ModelVersion that does not exist (yet): the Job waits.
BASELINE_NOT_FOUND: Final = "BaselineNotFound"
# Event: spec.resources.gpu asked for an algorithm that cannot use a GPU (none is asked).
GPU_NOT_USED: Final = "GPUNotUsed"
# A child's name is held by an object this resource does not own (never adopted/deleted).
NAME_CONFLICT: Final = "NameConflict"
VALIDATING: Final = "Validating"
DATA_CHECKS_PASSED: Final = "DataChecksPassed"
DATA_VALIDATION_FAILED: Final = "DataValidationFailed"
BAD_SPEC: Final = "InvalidSpec"
DATASET_UNAVAILABLE: Final = "DatasetUnavailable"
BUDGET_TOO_SMALL: Final = "BudgetTooSmall"
TRAINING: Final = "Training"
RETRYING: Final = "RetryingAfterCrash"
TRAINING_SUCCEEDED: Final = "TrainingSucceeded"
BACKOFF_LIMIT_EXCEEDED: Final = "BackoffLimitExceeded"
DEADLINE_EXCEEDED: Final = "DeadlineExceeded"
RESULT_UNREADABLE: Final = "ResultUnreadable"
RESULT_INVALID: Final = "ResultInvalid"  # readable, but not fit to register
REGISTRATION_REFUSED: Final = "RegistrationRefused"  # the API server refused the ModelVersion
JOB_FAILED: Final = "JobFailed"
MODEL_REGISTERED: Final = "ModelRegistered"
NOT_YET: Final = "NotYet"
ARTIFACT_RECORDED: Final = "ArtifactRecorded"
INVALID_REFERENCE: Final = "InvalidReference"
STAGE_ASSIGNED: Final = "StageAssigned"

# ComputePool condition types (Ready above means: at the desired size, provider healthy)
PROVIDER_READY: Final = "ProviderReady"
PODS_FIT: Final = "PodsFit"
CAPACITY_AVAILABLE: Final = "CapacityAvailable"

# ComputePool reasons
AT_DESIRED_SIZE: Final = "AtDesiredSize"
SCALING_UP: Final = "ScalingUp"
SCALING_DOWN: Final = "ScalingDown"
PROVIDER_OK: Final = "ProviderOK"
PROVIDER_ERROR: Final = "ProviderError"
ALL_PODS_FIT: Final = "AllPodsFit"
POD_TOO_LARGE: Final = "PodTooLarge"
WITHIN_MAX_NODES: Final = "WithinMaxNodes"
MAX_NODES_REACHED: Final = "MaxNodesReached"
SCALED_UP: Final = "ScaledUp"
SCALED_DOWN: Final = "ScaledDown"
# ComputePool deletion (Ready=False while the finalizer drains the nodes)
DRAINING: Final = "Draining"
DELETION_BLOCKED: Final = "DeletionBlocked"
EVICTION_REFUSED: Final = "EvictionRefused"
DRAIN_FAILED: Final = "DrainFailed"
DRAINED: Final = "Drained"

# InferenceService condition types (READY above is shared)
MODEL_RESOLVED: Final = "ModelResolved"
PROGRESSING: Final = "Progressing"

# InferenceService reasons
MODELVERSION_RESOLVED: Final = "ModelVersionResolved"
MODELVERSION_NOT_FOUND: Final = "ModelVersionNotFound"
NO_VERSION_IN_STAGE: Final = "NoVersionInStage"
MODELVERSION_NOT_READY: Final = "ModelVersionNotReady"
MODELVERSION_REJECTED: Final = "ModelVersionRejected"
ARTIFACT_NOT_SERVABLE: Final = "ArtifactNotServable"
DEPLOYING: Final = "Deploying"
ROLLING_UPDATE: Final = "RollingUpdate"
CANARY_STEP: Final = "CanaryStep"
PROMOTING: Final = "Promoting"
ROLLOUT_COMPLETE: Final = "RolloutComplete"
ROLLOUT_ABANDONED: Final = "RolloutAbandoned"
ERROR_RATE_EXCEEDED: Final = "ErrorRateExceeded"
LATENCY_EXCEEDED: Final = "LatencyExceeded"
READY_DEADLINE_EXCEEDED: Final = "ReadyDeadlineExceeded"
REPLICAS_READY: Final = "ReplicasReady"
REPLICAS_NOT_READY: Final = "ReplicasNotReady"
NOTHING_TO_SERVE: Final = "NothingToServe"
ROLLED_BACK: Final = "RolledBack"
DEGRADED: Final = "Degraded"

# RetrainPolicy condition types
TRIGGERED: Final = "Triggered"
PROMOTED: Final = "Promoted"

# RetrainPolicy reasons (Triggered also takes the trigger's own reason: Schedule, Drift...)
WAITING_FOR_TRIGGER: Final = "WaitingForTrigger"
COOLING_DOWN: Final = "CoolingDown"
DAILY_LIMIT_REACHED: Final = "DailyLimitReached"  # spec.maxTrainingJobsPerDay in 24 h
SUSPENDED: Final = "Suspended"
INFERENCESERVICE_NOT_FOUND: Final = "InferenceServiceNotFound"
NO_SERVING_VERSION: Final = "NoServingVersion"
INVALID_SCHEDULE: Final = "InvalidSchedule"
TRAINING_FAILED: Final = "TrainingFailed"
CANDIDATE_PROMOTED: Final = "CandidatePromoted"
AWAITING_APPROVAL: Final = "AwaitingApproval"
VERSION_PINNED: Final = "VersionPinned"
BELOW_MIN_IMPROVEMENT: Final = "BelowMinImprovement"
CANDIDATE_METRIC_MISSING: Final = "CandidateMetricMissing"
BASELINE_METRIC_MISSING: Final = "BaselineMetricMissing"

# RetrainPolicy condition type of the newData trigger's probe, and its reasons (a failed
# probe also says DatasetUnavailable or InvalidSpec, as a TrainingJob would)
DATASET_CHECKED: Final = "DatasetChecked"
DATASET_CHANGED: Final = "DatasetChanged"
DATASET_UNCHANGED: Final = "DatasetUnchanged"
PROBE_FAILED: Final = "ProbeFailed"
