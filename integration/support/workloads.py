"""Request sets shared by the tests that check batch invariance."""
import random


def identity_jobs(count=64):
    """`count` (prompt, sampling) pairs: prompts of 20 to 90 words, a third of them sharing a
    70-word prefix; greedy and seeded (T = 0.9) alternately; maxTokens of 4 to 24."""
    words = ("the model was trained on a small corpus of chat messages and evaluated on held out prompts about science "
             "history and code").split()
    rng = random.Random(7)
    prefix = " ".join(rng.choice(words) for _ in range(70))
    made = []
    for index in range(count):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(20, 90)))
        prompt = f"{prefix} {body}" if index % 3 == 0 else body
        sampling = {"temperature": 0} if index % 2 == 0 else {"temperature": 0.9, "seed": 1000 + index}
        made.append((prompt, {**sampling, "maxTokens": rng.choice([4, 8, 16, 24])}))
    return made
