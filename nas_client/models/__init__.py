"""Contains all the data models used in inputs/outputs"""

from .artifact_read import ArtifactRead
from .artifact_read_format import ArtifactReadFormat
from .best_trial import BestTrial
from .budget import Budget
from .class_count import ClassCount
from .class_metrics import ClassMetrics
from .constraints import Constraints
from .dataset_list import DatasetList
from .dataset_read import DatasetRead
from .dataset_read_errors_item import DatasetReadErrorsItem
from .dataset_read_status import DatasetReadStatus
from .dataset_sample_list import DatasetSampleList
from .dataset_sample_read import DatasetSampleRead
from .epoch_read import EpochRead
from .experiment_create import ExperimentCreate
from .experiment_create_search_space import ExperimentCreateSearchSpace
from .experiment_create_strategy import ExperimentCreateStrategy
from .experiment_create_strategy_settings import ExperimentCreateStrategySettings
from .experiment_list import ExperimentList
from .experiment_read import ExperimentRead
from .experiment_read_budget import ExperimentReadBudget
from .experiment_read_objective import ExperimentReadObjective
from .experiment_read_pruner import ExperimentReadPruner
from .experiment_read_reproducibility import ExperimentReadReproducibility
from .experiment_read_search_space import ExperimentReadSearchSpace
from .experiment_read_status import ExperimentReadStatus
from .experiment_read_strategy_settings import ExperimentReadStrategySettings
from .experiment_resume import ExperimentResume
from .health import Health
from .health_checks import HealthChecks
from .image_prediction import ImagePrediction
from .image_shape import ImageShape
from .int_8_read import Int8Read
from .latency_device import LatencyDevice
from .latency_device_identity import LatencyDeviceIdentity
from .leaderboard import Leaderboard
from .list_experiments_status_type_0 import ListExperimentsStatusType0
from .list_trials_status_type_0 import ListTrialsStatusType0
from .model_create import ModelCreate
from .model_list import ModelList
from .model_read import ModelRead
from .model_read_status import ModelReadStatus
from .objective import Objective
from .objective_metric import ObjectiveMetric
from .objective_minimize_type_0_item import ObjectiveMinimizeType0Item
from .objective_mode import ObjectiveMode
from .predict_body import PredictBody
from .predicted_class import PredictedClass
from .prediction_read import PredictionRead
from .problem import Problem
from .problem_errors_type_0_item import ProblemErrorsType0Item
from .progress import Progress
from .pruner import Pruner
from .pruner_kind import PrunerKind
from .ranked_trial import RankedTrial
from .ranked_trial_arch import RankedTrialArch
from .ranked_trial_decisions import RankedTrialDecisions
from .ranked_trial_status import RankedTrialStatus
from .runtime_figures import RuntimeFigures
from .screened import Screened
from .screened_by_reason import ScreenedByReason
from .screened_smallest import ScreenedSmallest
from .search_space_read import SearchSpaceRead
from .search_space_read_decisions import SearchSpaceReadDecisions
from .search_space_read_decisions_additional_property import (
    SearchSpaceReadDecisionsAdditionalProperty,
)
from .search_space_read_dimensions import SearchSpaceReadDimensions
from .search_space_read_dimensions_additional_property import (
    SearchSpaceReadDimensionsAdditionalProperty,
)
from .search_space_read_override import SearchSpaceReadOverride
from .search_space_read_overrides_applied import SearchSpaceReadOverridesApplied
from .split_sizes import SplitSizes
from .tensor_flow_check import TensorFlowCheck
from .tensor_flow_read import TensorFlowRead
from .tensor_flow_read_versions import TensorFlowReadVersions
from .tf_lite_int_8_read import TFLiteInt8Read
from .trial_list import TrialList
from .trial_read import TrialRead
from .trial_read_arch import TrialReadArch
from .trial_read_decisions import TrialReadDecisions
from .trial_read_status import TrialReadStatus
from .upload_dataset_body import UploadDatasetBody
from .warm_start import WarmStart
from .warm_start_read import WarmStartRead
from .warm_start_read_skipped_by_reason import WarmStartReadSkippedByReason
from .warm_start_seed import WarmStartSeed

__all__ = (
    "ArtifactRead",
    "ArtifactReadFormat",
    "BestTrial",
    "Budget",
    "ClassCount",
    "ClassMetrics",
    "Constraints",
    "DatasetList",
    "DatasetRead",
    "DatasetReadErrorsItem",
    "DatasetReadStatus",
    "DatasetSampleList",
    "DatasetSampleRead",
    "EpochRead",
    "ExperimentCreate",
    "ExperimentCreateSearchSpace",
    "ExperimentCreateStrategy",
    "ExperimentCreateStrategySettings",
    "ExperimentList",
    "ExperimentRead",
    "ExperimentReadBudget",
    "ExperimentReadObjective",
    "ExperimentReadPruner",
    "ExperimentReadReproducibility",
    "ExperimentReadSearchSpace",
    "ExperimentReadStatus",
    "ExperimentReadStrategySettings",
    "ExperimentResume",
    "Health",
    "HealthChecks",
    "ImagePrediction",
    "ImageShape",
    "Int8Read",
    "LatencyDevice",
    "LatencyDeviceIdentity",
    "Leaderboard",
    "ListExperimentsStatusType0",
    "ListTrialsStatusType0",
    "ModelCreate",
    "ModelList",
    "ModelRead",
    "ModelReadStatus",
    "Objective",
    "ObjectiveMetric",
    "ObjectiveMinimizeType0Item",
    "ObjectiveMode",
    "PredictBody",
    "PredictedClass",
    "PredictionRead",
    "Problem",
    "ProblemErrorsType0Item",
    "Progress",
    "Pruner",
    "PrunerKind",
    "RankedTrial",
    "RankedTrialArch",
    "RankedTrialDecisions",
    "RankedTrialStatus",
    "RuntimeFigures",
    "Screened",
    "ScreenedByReason",
    "ScreenedSmallest",
    "SearchSpaceRead",
    "SearchSpaceReadDecisions",
    "SearchSpaceReadDecisionsAdditionalProperty",
    "SearchSpaceReadDimensions",
    "SearchSpaceReadDimensionsAdditionalProperty",
    "SearchSpaceReadOverride",
    "SearchSpaceReadOverridesApplied",
    "SplitSizes",
    "TFLiteInt8Read",
    "TensorFlowCheck",
    "TensorFlowRead",
    "TensorFlowReadVersions",
    "TrialList",
    "TrialRead",
    "TrialReadArch",
    "TrialReadDecisions",
    "TrialReadStatus",
    "UploadDatasetBody",
    "WarmStart",
    "WarmStartRead",
    "WarmStartReadSkippedByReason",
    "WarmStartSeed",
)
