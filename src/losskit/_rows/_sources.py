"""Where the embedded worked examples come from (five published tutorials), and their
inputs, shared by the rows of several families."""

from __future__ import annotations

import math

# Where the embedded worked examples come from: five published tutorials.
T000 = "a published summary of PyTorch's loss functions"
T001 = "a tutorial on robust classification losses"
T002 = "a tutorial on nn.CrossEntropyLoss with ignore_index and class weights"
T003 = "a PyTorch deep-learning book's chapter on loss functions"
T004 = "a PyTorch tutorial on loss functions"
# Their inputs.
SEED003 = dict(input=[[1.0, 1.0], [1.0, 1.0]], target=[[0.0, 1.0], [2.0, 3.0]])
SEED004 = dict(input=[0.020, 0.176, 0.313], target=[0.019, 0.234, 0.918])
SEED000_LOGITS = [[-1.0, 1.0], [1.0, 2.0]]
SEED000_TARGET = [[1.0, 0.0], [0.0, 1.0]]  # torch.eye(2)[[0, 1]]
SEED004_FOCAL_P = [0.95, 0.05, 0.5, 0.5]
SEED002_PRED = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
SEED002_PRED4 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]
SEED000_P = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.1, 0.2, 0.3]]
SEED000_NLL_P = [[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]]
SEED001_PRED = [[10.0, 5.0, -6.0], [8.0, 8.0, 8.0]]


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


S003 = T003 + ": sample = ones(2, 2), target = [[0, 1], [2, 3]]"
S004 = T004 + ": y_hat = [0.020, 0.176, 0.313], y_true = [0.019, 0.234, 0.918]"
