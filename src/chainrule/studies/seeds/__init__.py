"""A walk through the five seed posts: each formula, where chainrule implements it, a live check.

:func:`walkthrough` returns one :class:`SeedCheck` per formula: the formula as the post states it,
the same in chainrule's row layout (rows are samples, ``z = x W + b``), the dotted path of the
function that implements it, and a check run now (a gradient check by central differences, or an
exact value compared with the library). :func:`errata` returns every slip found in the posts as a
:class:`Slip`: what the post says, the correct form, and — unless the slip is text-only — a live
check that confirms the corrected form, with the values each form gives where there are numbers.

The posts (``../shared/seeds/``), one module each:

* :mod:`.seed000` "deeplearning 反向传播的数学推导": softmax regression and an MLP with cross-entropy;
  its formulas are images that the text does not contain, so only the prose can be checked.
* :mod:`.seed001` "神经网络推导": squared error with L2 (UFLDL notation, ``z^{l+1} = W^l a^l + b^l``),
  the δ rules.
* :mod:`.seed002` "这！就是深度学习之反向传播算法": matrix backward of a dense layer, activation
  derivatives; :mod:`.seed002_example` its worked 3-2-2 example (see :mod:`chainrule.studies.example`).
* :mod:`.seed003` "神经网络训练的理论推导": sigmoid + binary cross-entropy, matrix form, an update recursion.
* :mod:`.seed004` "反向传播算法及其梯度扩散": Nielsen's BP1-BP3 and the vanishing gradient.

Each module holds its formulas and its slips as data (:class:`~.common.CheckRecord`,
:class:`~.common.SlipRecord`, each slip naming its check function or marked text-only) and a
``measure()`` that runs the library once; :mod:`.common` evaluates them, :mod:`.render` prints them.

Kinds of slip:

* ``numeric`` — the post prints a wrong number; ``post_value`` is the figure it printed,
  ``correct_value`` the library's, and the check confirms the latter independently.
* ``formula`` — a wrong formula, index, shape or label; the check confirms the corrected form, and
  where both forms can be evaluated the values show what each gives.
* ``conceptual`` — a wrong claim in the prose, with a live check of the correct claim.
* ``text-only`` — wording or typesetting; no check runs (there is nothing to compute).

Typo policy, the same for every post: a typo that changes what a formula, index, label or number
says — read literally it names another defined quantity (∂J/∂o_11 for ∂J/∂o_12, "sigmoid" for tanh,
b_1 for b_2) or gives another value — is a slip of its own, ``formula`` or ``numeric``, with a live
check. A pure spelling or typesetting typo — a wrong character or word, a dropped word, a subscript
that renders oddly, a symbol that names nothing defined (z_{2_1}, w₁0) — changes no formula; every
such typo of a post is listed once, together with the others, in that post's one text-only "typos"
slip.
"""

from chainrule.studies.seeds.common import SEEDS, SeedCheck, Slip, resolve
from chainrule.studies.seeds.render import render
from chainrule.studies.seeds.seed003 import post003_hidden_rule
from chainrule.studies.seeds.walk import collect, errata, walkthrough

__all__ = [
    "SEEDS",
    "SeedCheck",
    "Slip",
    "collect",
    "errata",
    "post003_hidden_rule",
    "render",
    "resolve",
    "walkthrough",
]
