"""The `arithmetic` RL task: deterministic disjoint splits and a verifier that is strict about format."""
import pytest

from scaling.config.data import MathConfig
from scaling.data import arithmetic
from scaling.errors import UserError
from scaling.rl.tasks import ArithmeticTask, Problem, Task, get_task

PROBLEM = Problem(prompt="Q: 47+38=?\nA:", answer="85")
NEGATIVE = Problem(prompt="Q: 12-47=?\nA:", answer="-35")
ZERO = Problem(prompt="Q: 5-5=?\nA:", answer="0")


@pytest.fixture
def task():
    return get_task("arithmetic", max_digits=2, max_steps=2)


def test_get_task_builds_the_arithmetic_task_with_its_difficulty():
    task = get_task("arithmetic", min_digits=2, max_digits=4, max_steps=3, format_reward=0.1)
    assert isinstance(task, ArithmeticTask) and isinstance(task, Task)
    assert (task.math.min_digits, task.math.max_digits, task.math.max_steps, task.format_reward) == (2, 4, 3, 0.1)


def test_unknown_task_is_a_user_error_listing_the_available_ones():
    with pytest.raises(UserError, match="unknown task 'gsm9k'.*arithmetic"):
        get_task("gsm9k")


@pytest.mark.parametrize("params", [{"max_digits": 0}, {"operations": ["/"]}, {"colour": "red"}, {"format_reward": 1.5}])
def test_bad_task_params_are_user_errors(params):
    with pytest.raises(UserError, match="task arithmetic"):
        get_task("arithmetic", **params)


@pytest.mark.parametrize(
    "completion",
    [" #### 85", "#### 85", " #### 85\n", "\n #### 85  ", " 47+38=85. #### 85", " 40+7=47; 47+38=85. #### 85"],
)
def test_right_answer_in_the_format_earns_full_reward(task, completion):
    assert task.reward(completion, PROBLEM) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "",  # empty output
        "   ",
        " 85",  # right number, no marker
        " ####85",  # right number, wrong format
        " ####  85",
        " #### 085",  # leading zero
        " #### +85",
        " #### 85.0",
        " #### 8 5",
        " #### 85 #### 85",  # several answers
        " #### 84 #### 85",
        " #### 85 because 47+38=85",  # extra text after the answer
        " #### 85\nQ: 1+1=?",
        " the answer is #### 85",  # free text before the marker
        " #### ٨٥",  # non-ASCII digits
        " " + "47+38=85; " * 200 + "#### 85",  # overlong
        " #### " + "9" * 2000,
    ],
)
def test_malformed_output_earns_nothing(task, completion):
    assert task.reward(completion, PROBLEM) == 0.0


def test_negative_and_zero_answers(task):
    assert task.reward(" #### -35", NEGATIVE) == 1.0
    assert task.reward(" 12-47=-35. #### -35", NEGATIVE) == 1.0
    assert task.reward(" #### 35", NEGATIVE) == 0.0
    assert task.reward(" #### - 35", NEGATIVE) == 0.0
    assert task.reward(" #### 0", ZERO) == 1.0
    assert task.reward(" #### -0", ZERO) == 0.0
    assert task.reward(" #### 00", ZERO) == 0.0


def test_format_reward_pays_only_for_well_formed_wrong_answers():
    task = get_task("arithmetic", format_reward=0.1)
    assert task.reward(" #### 84", PROBLEM) == pytest.approx(0.1)
    assert task.reward(" #### 85", PROBLEM) == 1.0
    assert task.reward(" 84", PROBLEM) == 0.0
    assert get_task("arithmetic").reward(" #### 84", PROBLEM) == 0.0


def test_reference_completions_earn_full_reward(task):
    for problem in task.train_problems(seed=0, n=50) + task.eval_problems(50):
        completion = task.reference_completion(problem)
        assert task.reward(completion, problem) == 1.0
        assert problem.prompt.startswith("Q: ") and problem.prompt.endswith("=?\nA:")


def test_train_and_eval_problems_are_disjoint_and_deterministic(task):
    held_out = task.eval_problems(300)
    assert [p.prompt for p in held_out] == [p.prompt for p in task.eval_problems(300)]
    assert len({p.prompt for p in held_out}) == 300
    held_out_prompts = {p.prompt for p in held_out}
    for seed in range(3):
        train = task.train_problems(seed=seed, n=2000)
        assert not held_out_prompts & {p.prompt for p in train}
    assert [p.prompt for p in task.train_problems(0, 20)] == [p.prompt for p in task.train_problems(0, 20)]
    assert [p.prompt for p in task.train_problems(1, 20)] != [p.prompt for p in task.train_problems(0, 20)]


def test_train_problems_have_random_access_for_resume(task):
    whole = task.train_problems(seed=2, n=30)
    assert [p.prompt for p in task.train_problems(seed=2, n=10, start=20)] == [p.prompt for p in whole[20:]]


def test_eval_set_does_not_depend_on_the_train_seed():
    a = get_task("arithmetic", seed=0).eval_problems(20)
    b = get_task("arithmetic", seed=7).eval_problems(20)
    assert [p.prompt for p in a] == [p.prompt for p in b]


def test_tiny_problem_spaces_still_split_cleanly():
    math = MathConfig(max_digits=1, max_steps=1, operations=["+"])  # only 100 problems exist
    held_out = arithmetic.eval_problems(math, 10)
    assert all(p.is_eval for p in held_out)
    train = [arithmetic.train_problem(math, 0, i) for i in range(500)]
    assert not {p.expression for p in train} & {p.expression for p in held_out}


def test_harder_tasks_have_longer_problems():
    easy = get_task("arithmetic", max_digits=1, max_steps=1).eval_problems(100)
    hard = get_task("arithmetic", min_digits=3, max_digits=3, min_steps=3, max_steps=3).eval_problems(100)
    assert sum(len(p.prompt) for p in hard) > 2 * sum(len(p.prompt) for p in easy)


def test_held_out_problems_weigh_every_step_tier_equally():
    """One-step one-digit problems are few (200, ~10 held out): an unstratified draw of distinct problems
    would be mostly three-step ones, and the score would not be the mean over tiers the demo reports."""
    math = MathConfig(max_digits=1, min_steps=1, max_steps=3, operations=["+", "-"])
    held_out = arithmetic.eval_problems(math, 96)
    steps = [len(p.steps) for p in held_out]
    assert steps[:6] == [1, 2, 3, 1, 2, 3] and all(steps.count(s) == 32 for s in (1, 2, 3))
    assert all(p.is_eval for p in held_out)
    one_step = {p.expression for p in held_out if len(p.steps) == 1}
    assert 3 <= len(one_step) < 32  # the tier's whole held-out space, repeated to fill its share
    assert len({p.expression for p in held_out if len(p.steps) == 3}) == 32  # distinct where the space allows
