"""Generates the training corpus: simple English stories and sentences (pre-training) and short dialogues
(fine-tuning). Everything is produced here from templates, word lists and a seeded random generator, so the
corpus is reproducible and free of licence questions. Writes data/pretrain.txt (one document per line) and
data/dialogues.jsonl (one conversation per line: a list of {"role", "content"} messages)."""
import argparse
import json
import os
import random

NAMES = ["Tom", "Anna", "Ben", "Lily", "Sam", "Mia", "Jack", "Emma", "Leo", "Sara", "Max", "Lucy", "Tim", "Zoe", "Dan", "Amy"]
ANIMALS = ["cat", "dog", "bird", "fish", "rabbit", "horse", "cow", "duck", "frog", "mouse", "sheep", "fox", "bear", "lion"]
SOUNDS = {"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack", "sheep": "baa", "frog": "ribbit", "lion": "roar",
          "horse": "neigh", "bird": "tweet", "mouse": "squeak"}
COLOURS = ["red", "blue", "green", "yellow", "orange", "purple", "pink", "white", "black", "brown"]
THINGS = ["ball", "book", "hat", "cup", "box", "kite", "car", "bike", "toy", "apple", "cake", "chair", "bag", "flower"]
PLACES = ["park", "garden", "school", "shop", "beach", "forest", "kitchen", "library", "farm", "river"]
FOODS = ["apples", "bread", "soup", "rice", "cake", "cheese", "eggs", "bananas", "pizza", "carrots", "milk", "cookies"]
FEELINGS = ["happy", "sad", "tired", "excited", "hungry", "sleepy", "calm", "proud"]
WEATHER = ["sunny", "rainy", "cold", "warm", "windy", "cloudy", "snowy", "hot"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
ACTIONS = ["played", "ran", "walked", "read a book", "sang a song", "drew a picture", "ate lunch", "looked at the sky",
           "made a cake", "found a shell", "flew a kite", "rode a bike"]
FACTS = {
    "sky": "The sky is blue on a clear day.", "sun": "The sun is a star. It gives us light and heat.",
    "moon": "The moon goes around the Earth. We see it at night.", "grass": "Grass is green.",
    "snow": "Snow is cold and white.", "water": "Water is wet. We drink it every day.",
    "fish": "Fish live in water and swim with their fins.", "bird": "Most birds can fly. They have wings and feathers.",
    "tree": "A tree is a tall plant with a trunk, branches and leaves.", "rain": "Rain is water that falls from clouds.",
    "bee": "A bee is a small insect. Bees make honey.", "book": "A book has pages with words and sometimes pictures.",
}
ASSISTANT_NAME = "Chatty"


def pick(rng, xs):
    return rng.choice(xs)


def story(rng):
    n, m = rng.sample(NAMES, 2)
    a, c, t, p = pick(rng, ANIMALS), pick(rng, COLOURS), pick(rng, THINGS), pick(rng, PLACES)
    w, f, food = pick(rng, WEATHER), pick(rng, FEELINGS), pick(rng, FOODS)
    day = pick(rng, DAYS)
    parts = [
        f"One {w} day, {n} went to the {p}.",
        f"{n} saw a {c} {a} near a big tree.",
        f"The {a} was {pick(rng, FEELINGS)}.",
        f"{n} and {m} {pick(rng, ACTIONS)} together.",
        f"{m} had a {c} {t}.",
        f"\"Can I play with your {t}?\" asked {n}. \"Yes, you can,\" said {m}.",
        f"They shared some {food} and felt {f}.",
        f"On {day}, {n} told mom about the {a}.",
        f"At the end of the day, {n} went home and slept well.",
        f"It was a good day, and {n} was {f}.",
    ]
    k = rng.randint(4, len(parts))
    body = parts[:2] + rng.sample(parts[2:-2], k - 4) + parts[-2:] if k >= 4 else parts[:k]
    return " ".join(body)


def sentences(rng):
    out = []
    for _ in range(rng.randint(3, 7)):
        kind = rng.randrange(8)
        if kind == 0:
            a = pick(rng, ANIMALS)
            out.append(f"The {a} says {SOUNDS[a]}." if a in SOUNDS else f"A {a} is an animal.")
        elif kind == 1:
            x, y = rng.randint(0, 10), rng.randint(0, 10)
            out.append(f"{x} plus {y} is {x + y}.")
        elif kind == 2:
            i = rng.randrange(7)
            out.append(f"After {DAYS[i]} comes {DAYS[(i + 1) % 7]}.")
        elif kind == 3:
            out.append(FACTS[pick(rng, list(FACTS))])
        elif kind == 4:
            out.append(f"{pick(rng, NAMES)} likes {pick(rng, FOODS)}.")
        elif kind == 5:
            out.append(f"It is {pick(rng, WEATHER)} today.")
        elif kind == 6:
            n = rng.randint(1, 12)
            out.append(f"The number {NUMBER_WORDS[n]} is written as {n}.")
        else:
            i = rng.randrange(12)
            out.append(f"After {MONTHS[i]} comes {MONTHS[(i + 1) % 12]}.")
    return " ".join(out)


def turn(rng):
    """One (user, assistant) exchange."""
    kind = rng.randrange(16)
    if kind == 0:
        u = pick(rng, ["Hello!", "Hi!", "Hi there!", "Hello", "Hey!", "Good morning!", "Good evening!", "Hello there."])
        a = pick(rng, ["Hello! How can I help you today?", "Hi! It is nice to meet you. How can I help?",
                       "Hello there! What would you like to talk about?"])
    elif kind == 1:
        u = pick(rng, ["How are you?", "Hello! How are you?", "How are you today?", "Hi, how are you doing?",
                       "How is it going?"])
        a = pick(rng, ["I am fine, thank you! How are you?", "I am doing well, thank you for asking. How can I help you?",
                       "I am good, thanks! What can I do for you today?"])
    elif kind == 2:
        u = pick(rng, ["What is your name?", "Who are you?", "What are you called?", "Tell me your name."])
        a = pick(rng, [f"My name is {ASSISTANT_NAME}. I am a small chat assistant.",
                       f"I am {ASSISTANT_NAME}, a small assistant. I like to help with simple questions."])
    elif kind == 3:
        x, y = rng.randint(0, 20), rng.randint(0, 20)
        op = rng.randrange(2)
        if op == 0:
            u = pick(rng, [f"What is {x} plus {y}?", f"What is {x} + {y}?", f"Can you add {x} and {y}?"])
            a = f"{x} plus {y} is {x + y}."
        else:
            x, y = max(x, y), min(x, y)
            u = pick(rng, [f"What is {x} minus {y}?", f"What is {x} - {y}?"])
            a = f"{x} minus {y} is {x - y}."
    elif kind == 4:
        i = rng.randrange(7)
        u = pick(rng, [f"What day comes after {DAYS[i]}?", f"Which day is after {DAYS[i]}?"])
        a = f"The day after {DAYS[i]} is {DAYS[(i + 1) % 7]}."
    elif kind == 5:
        u = pick(rng, ["What are the days of the week?", "Can you name the days of the week?"])
        a = "The days of the week are " + ", ".join(DAYS[:-1]) + " and Sunday."
    elif kind == 6:
        a_ = pick(rng, [x for x in ANIMALS if x in SOUNDS])
        u = pick(rng, [f"What does a {a_} say?", f"What sound does a {a_} make?"])
        a = f"A {a_} says {SOUNDS[a_]}."
    elif kind == 7:
        k = pick(rng, list(FACTS))
        u = pick(rng, [f"Tell me about the {k}.", f"What is a {k}?", f"Can you tell me something about the {k}?"])
        a = FACTS[k]
    elif kind == 8:
        c = pick(rng, COLOURS)
        u = pick(rng, ["What is your favourite colour?", "Do you like colours?"])
        a = f"I like {c}. It is a nice colour. What colour do you like?"
    elif kind == 9:
        c = pick(rng, COLOURS)
        u = pick(rng, [f"My favourite colour is {c}.", f"I like the colour {c}."])
        a = f"{c.capitalize()} is a lovely colour!"
    elif kind == 10:
        u = pick(rng, ["Tell me a story.", "Can you tell me a short story?", "Please tell me a story."])
        a = story(rng)
    elif kind == 11:
        u = pick(rng, ["Can you help me?", "I need help.", "Please help me.", "Can you help me with something?"])
        a = pick(rng, ["Of course! What do you need help with?", "Yes, I can try. What is the problem?"])
    elif kind == 12:
        u = pick(rng, ["Thank you!", "Thanks!", "Thank you very much.", "Thanks for your help."])
        a = pick(rng, ["You are welcome!", "You are welcome. I am happy to help!", "No problem! Have a nice day."])
    elif kind == 13:
        u = pick(rng, ["Goodbye!", "Bye!", "See you later.", "Good night!"])
        a = pick(rng, ["Goodbye! Have a nice day.", "Bye! See you soon.", "Good night! Sleep well."])
    elif kind == 14:
        w = pick(rng, WEATHER)
        u = pick(rng, [f"It is {w} today.", f"The weather is {w} today."])
        tip = {"sunny": "It is a good day to play outside.", "rainy": "Take an umbrella with you.",
               "cold": "Wear a warm coat.", "warm": "It is nice to go for a walk.", "windy": "It is a good day to fly a kite.",
               "cloudy": "Maybe it will rain later.", "snowy": "You can build a snowman.", "hot": "Drink lots of water."}[w]
        a = f"Oh, it is {w}! {tip}"
    else:
        n = rng.randint(1, 20)
        u = pick(rng, [f"How do you write {NUMBER_WORDS[n]} as a number?", f"What number is {NUMBER_WORDS[n]}?"])
        a = f"{NUMBER_WORDS[n].capitalize()} is written as {n}."
    return u, a


def dialogue(rng):
    msgs = []
    if rng.random() < 0.15:
        msgs.append({"role": "system", "content": pick(rng, ["You are a helpful assistant.",
                                                             f"You are {ASSISTANT_NAME}, a friendly assistant."])})
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        u, a = turn(rng)
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    return msgs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "data"))
    ap.add_argument("--documents", type=int, default=30000)
    ap.add_argument("--dialogues", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pretrain.txt"), "w") as f:
        for i in range(args.documents):
            if i % 3 == 2:
                u, a = turn(rng)
                f.write(f"{u} {a}\n")  # plain question/answer text: the language of the dialogues, without the template
            else:
                f.write((story(rng) if i % 3 == 0 else sentences(rng)) + "\n")
    with open(os.path.join(args.out, "dialogues.jsonl"), "w") as f:
        for _ in range(args.dialogues):
            f.write(json.dumps(dialogue(rng)) + "\n")


if __name__ == "__main__":
    main()
