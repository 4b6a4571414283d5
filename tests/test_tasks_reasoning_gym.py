"""The reasoning-gym adapter (the optional `tasks` extra; the dev extra installs it, so it runs in CI)."""
import pytest

from scaling.errors import UserError
from scaling.rl.tasks import get_task


@pytest.fixture(scope="module")
def task():
    return get_task("reasoning-gym", dataset="chain_sum", eval_size=100)


def test_prompts_use_the_lab_format_and_reference_answers_score_one(task):
    for problem in task.eval_problems(10) + task.train_problems(seed=0, n=10):
        assert problem.prompt.startswith("Q: ") and problem.prompt.endswith("\nA:")
        assert task.reward(task.reference_completion(problem), problem) == 1.0


def test_verifier_is_strict_about_the_marker(task):
    problem = task.eval_problems(1)[0]
    for bad in ["", problem.answer, f" ####{problem.answer}", f" #### {problem.answer} #### {problem.answer}"]:
        assert task.reward(bad, problem) == 0.0
    assert task.reward(" #### 123456789", problem) == 0.0


def test_splits_are_disjoint_and_deterministic(task):
    held_out = {p.prompt for p in task.eval_problems(100)}
    train = task.train_problems(seed=0, n=300)
    assert not held_out & {p.prompt for p in train}
    assert [p.prompt for p in task.train_problems(seed=0, n=5, start=100)] == [p.prompt for p in train[100:105]]


def test_unknown_dataset_and_bad_params_are_user_errors():
    with pytest.raises(UserError, match="unknown dataset"):
        get_task("reasoning-gym", dataset="no_such_dataset")
    with pytest.raises(UserError, match="bad parameters"):
        get_task("reasoning-gym", dataset="chain_sum", no_such_param=1)
