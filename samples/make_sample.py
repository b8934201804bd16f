"""Write the bundled sample data: an invented person's iMessage export and her facts file.

Everything here is made up: the persona (Maya Lindqvist), her contacts, their phone numbers
(all in the fictional 555-01xx range) and e-mail addresses (example.com / example.org).

Run ``.venv/bin/python samples/make_sample.py`` to rewrite ``samples/imessage/messages.csv``
and ``samples/facts.toml``.  Only the standard library is used and the random generator is
seeded, so the output is byte-for-byte the same on every run.
"""

from __future__ import annotations

import csv
import io
import random
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20240304
HEADER = [
    "Timestamp",
    "Readable Time",
    "Sender",
    "Sender ID",
    "Message",
    "Group Chat",
    "Group Chat Name",
    "Sent by Me",
    "To",
]
START = datetime(2022, 10, 1)  # before the default 2023-01-01 cut-off, on purpose
END = datetime(2024, 12, 30)
OBJ = "\ufffc"  # what iMessage leaves in the text of a message that carries an attachment
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z\u0400-\u04ff])")
TAPBACKS = ["Loved", "Liked", "Laughed at", "Emphasized", "Disliked", "Questioned"]

# --------------------------------------------------------------------------------------
# Contacts.  weight ~ how much they text; topics: which conversation pools they draw from.
# --------------------------------------------------------------------------------------

GENERIC = {
    "plans": 4,
    "dog": 2,
    "work": 2,
    "climbing": 1,
    "food": 2,
    "weekend": 2,
    "link": 2,
    "news": 1,
    "home": 1,
    "latenight": 1,
    "thanks": 1,
    "random": 2,
}

CONTACTS = [
    # display name, handle, weight (how much they text), topic weight overrides
    ("Priya Natarajan", "+1 415 555 0134", 11.0, {"gossip": 3, "climbing": 2}),
    ("Jordan Reyes", "jordan.reyes@example.com", 8.0, {"climbing": 4, "gossip": 1}),
    ("Mom", "+1 (218) 555-0147", 8.0, {"mom": 9, "plans": 0, "link": 0, "latenight": 0, "climbing": 0}),
    ("Dmitri Volkov", "+1 510 555 0162", 6.0, {"russian": 10, "climbing": 4}),
    ("Elsa Lindqvist", "+1 612 555 0119", 6.0, {"sister": 5, "home": 2}),
    ("Tess Moreau", "tess.moreau@example.org", 5.0, {"gossip": 2}),
    ("Marcus Bell", "+1 510 555 0171", 4.0, {"climbing": 2}),
    ("Noa Shapiro", "+1 347 555 0128", 4.0, {"hebrew": 12}),
    ("Sam Okafor", "+1 415 555 0183", 3.0, {"climbing": 3}),
    ("Hannah Whitfield", "+1 510 555 0106", 3.0, {}),
    ("Dad", "+1 (218) 555-0158", 2.5, {"dad": 6, "plans": 0, "latenight": 0, "link": 1, "climbing": 0}),
    ("Leo Castellanos", "+1 415 555 0192", 2.0, {}),
    ("Aisha Rahman", "aisha.rahman@example.com", 2.0, {"gossip": 1}),
    ("Ben Carter", "+1 510 555 0139", 2.0, {"coworker": 6}),
    ("Chloe Nguyen", "+1 628 555 0115", 1.6, {}),
    ("Owen Fitzgerald", "+1 415 555 0177", 1.4, {"climbing": 2}),
    ("Rosa Delgado", "+1 510 555 0124", 4.0, {"boss": 8, "plans": 0, "latenight": 0, "link": 0}),
    ("Kenji Watanabe", "+1 650 555 0141", 1.0, {}),
    ("Grace Holloway", "grace.holloway@example.com", 1.0, {}),
    ("Tomás Herrera", "+1 510 555 0187", 0.9, {}),
    ("Lily Chen", "+1 415 555 0109", 0.7, {}),
    ("Nate Sorensen", "+1 218 555 0165", 0.6, {"home": 3}),
    ("Zoe Park", "+1 628 555 0196", 0.5, {}),
    ("Ethan Brooks", "+1 415 555 0152", 0.8, {"ethan": 8, "plans": 0, "dog": 0, "work": 0}),
]
SESSIONS_PER_WEIGHT = 3.8
IGNORED_A_LOT = {"Ethan Brooks"}  # the owner leaves most of his messages unanswered

GROUPS = [
    ("Crag Rats 🧗", ["Dmitri Volkov", "Jordan Reyes", "Sam Okafor", "Marcus Bell", "Owen Fitzgerald"], 45),
    ("Lindqvist Fam", ["Mom", "Dad", "Elsa Lindqvist"], 35),
    ("bartaco tuesdays 🌮", ["Priya Natarajan", "Tess Moreau", "Hannah Whitfield", "Leo Castellanos"], 35),
]

# --------------------------------------------------------------------------------------
# Conversation pools.  An exchange: the contact says one of ``c`` (a string or a burst
# list), the owner answers with one of ``m`` (always a burst list), then maybe one of
# ``then`` follows.  "TAP:Loved" in an owner burst is a tapback on the contact's last line.
# --------------------------------------------------------------------------------------


def ex(c, m, then=(), p=0.6):
    return {"c": c, "m": m, "then": list(then), "p": p}


HOW_ARE_YOU = [
    "hey how are you?",
    "hi! how's it going?",
    "hello, how are you?",
    "hey how are you?",
    "hi! how's it going?",
    "hello, how are you?",
    "Hey! How are you doing?",
    "Hey how are you?",
    "Hi Maya! How are you?",
    "heyyy how's your week going?",
    "Hey stranger, how've you been?",
    "Hiii how are you?",
    "Hi! How's it going?",
    "Hello! How are you?",
    "yo what's up",
    "Hey you! What's new?",
    "Hi!! How are things?",
    "How are you doing today?",
]
GREETINGS = {
    "Dmitri Volkov": ["Привет! Как дела?", "Привет, как ты?", "Hey how are you?", "Как жизнь?"],
    "Noa Shapiro": ["היי! מה שלומך?", "היי מה קורה?", "hi! how's it going?", "מה נשמע?"],
    "Mom": ["Hi honey! How are you?", "hello, how are you?", "Good morning sweetie, how are you?"],
    "Dad": ["Hi Maya. How are you?", "Hello, how are you?", "How's my girl?"],
}
GREETING_REPLIES = [
    ["omg hiii", "im good just got back from climbing", "u?"],
    ["hiii", "good!! tired but good", "hbu"],
    ["heyyy", "lowkey exhausted ngl", "studio was chaos today", "u?"],
    ["omg hi", "im good!! pickle and i just got back from a walk", "how r u"],
    ["hiii", "honestly sooo good", "had the best cold brew this morning", "u?"],
    ["heyyy", "surviving lol", "u?"],
    ["hi!!", "good good", "just got off my shift", "whats up w u"],
    ["omg hiii", "been a week fr", "but good", "u?"],
    ["heyy", "im good just eating tacos lol", "u?"],
    ["hiii", "im great actually", "unloaded the kiln and nothing cracked", "hbu"],
    ["omg {first} hiii", "im good!!", "u?"],
    ["hiiii", "tired but happy", "pickle says hi"],
    ["heyyy", "ngl kinda sore from climbing", "but good", "u?"],
    ["hi!!", "im good", "just sitting in the sun w pickle lol"],
]
HOW_ARE_YOU_BACK = [
    "Good! Busy with work but can't complain.",
    "Pretty good! Just got home.",
    "I'm doing well, thanks! Kind of tired.",
    "All good here!",
    "Not bad, not bad.",
    "Honestly pretty great, it's finally sunny here ☀️",
    "Good!! Just got back from the gym.",
    "Hanging in there lol",
    "Doing great, thanks for asking!",
]

# Follow-ups shared by several exchanges.
PLAN_CONFIRM = ex(
    ["Perfect, 7pm?", "Sounds good! See you then.", "Works for me 🙌", "Deal. I'll text you when I'm leaving.", "Yay! Can't wait."],
    [["bet", "see u there"], ["perfect", "cant wait"], ["yesss", "see uuu"], ["ok bet", "ill be the one w the dog lol"],
     ["sounds good!!"], ["TAP:Loved"], ["TAP:Liked", "see u!!"]],
)
PLAN_CANCEL = ex(
    ["Ugh actually I can't, rain check?", "Actually I might have to cancel, work is insane 😩", "Hmm that's bad for me. Next week?"],
    [["nooo ok", "next week tho fr"], ["all good!!", "lmk when ur free"], ["nooooo", "ok ok rain check"], ["ya ofc", "dont work too hard"]],
)
MOM_AFTER = [
    ex(["Love you sweetie ❤️", "Ok! Talk soon. Love you"], [["Love you too, Mom!"], ["TAP:Loved"], ["Love you! Pickle says hi."]]),
    ex(["Dad wants to know if you're still coming in December."], [["Yes, I'm flying in on the 20th.", "Tell him I can't wait!"]]),
]
RU_AFTER = ex(
    ["Отлично, до встречи!", "Ok see you there", "Круто 👍"],
    [["bet"], ["TAP:Liked"], ["see u!!"], ["увидимся!!", "did i spell that right"]],
)

TOPICS = {
    "plans": [
        ex(["Are you free this weekend?", "Any plans this weekend?", "What are you doing Saturday?"],
           [["omg ya", "saturday works", "bartaco?"], ["ugh i work saturday", "sunday tho?"], ["free sunday!!", "what r u thinking"],
            ["ya!!", "climbing in the morning but free after"]],
           [PLAN_CONFIRM, PLAN_CANCEL], p=0.8),
        ex(["Want to get dinner Friday?", "Dinner this week? I miss you!", "Free for dinner Thursday?"],
           [["yesss", "bartaco?"], ["omg yes", "after my shift?"], ["ya!!", "i miss u too", "bartaco?"],
            ["i have climbing til 7", "after that?"], ["ya def", "lowkey been craving bartaco all week"]],
           [PLAN_CONFIRM, PLAN_CANCEL, ex(["Bartaco again? 😂", "Lol is there any other restaurant"], [["always", "bartaco forever"], ["lmaooo", "u know the answer"]])], p=0.8),
        ex(["Want to grab tacos tomorrow?", "Taco night?? 🌮"],
           [["yesss!!!!", "im free after 6"], ["bet", "what time"], ["u dont have to ask twice", "bartaco?"]],
           [PLAN_CONFIRM], p=0.8),
        ex(["What are you up to tonight?", "Doing anything tonight?"],
           [["nothing lol", "couch and pickle"], ["climbing til 8", "then nothing", "why"], ["lowkey nothing", "wanna hang?"]],
           [ex(["Want to come over? Making pasta", "Movie night?"], [["omg yes", "omw in 20"], ["bet", "bringing pickle"]])], p=0.6),
        ex([["Ok we need to hang out.", "It's been way too long!!"], "We should hang out soon!", "I feel like I haven't seen you in forever"],
           [["omg ya", "its been forever fr", "this week?"], ["yesss pls", "bartaco?"], ["i know!!", "im free wed"]],
           [PLAN_CONFIRM, PLAN_CANCEL], p=0.8),
        ex(["Any plans Saturday? Thinking of going to the lake.", "Want to come to the lake Saturday?"],
           [["omg yes pls", "lake sounds perfect"], ["yesss", "can pickle come"]],
           [PLAN_CONFIRM], p=0.7),
        ex(["Free for brunch Sunday?", "Brunch Sunday?"], [["yesss", "11?"], ["bet", "i need pancakes"]], [PLAN_CONFIRM]),
        ex(["Drinks after work Thursday?", "Happy hour Thursday?"], [["bet", "where"], ["ya!!", "im off at 5"]], [PLAN_CONFIRM, PLAN_CANCEL]),
    ],
    "dog": [
        ex(["How's Pickle doing?", "How is Pickle??", "How's my favorite dog?"],
           [["omg shes so good", "pickle says hi"], ["shes thriving fr", "sleeps like 20 hrs a day"],
            ["shes good!!", "got a haircut and is embarrassed lol"], ["sooooo good", "she made a new friend at the park"],
            ["lmaooo", "she ate another sock", "shes fine tho"]],
           [ex(["Omg I miss her 😭", "Hahahahaha poor thing", "Tell her I said hi!!"],
               [["she misses u too"], ["lmaooo", "she'll survive"], ["she says hi back", "pickle says hi"], ["TAP:Loved"]])], p=0.5),
        ex(["Send me a pic of Pickle please", "I need a Pickle pic asap"],
           [[OBJ, "pickle says hi"], [OBJ, OBJ, "she knows shes cute"], [OBJ, "she was mid zoomie"]],
           [ex(["Omg she's so cute 😭", "STOP she's adorable", "I need to meet her again asap"],
               [["i know", "shes perfect"], ["lmaooo", "she knows"], ["come over whenever", "she loves u"], ["TAP:Loved"]])], p=0.7),
        ex(["Did Pickle ever stop chewing your shoes?"], [["nooo", "she got my climbing shoes last week", "rip"], ["lmaooo no", "she has a type"]]),
        ex(["Is Pickle still scared of the vacuum?"], [["ya still terrified", "its lowkey hilarious"], ["worse now lol", "she hides in the tub"]]),
        ex(["Give Pickle a hug from me!", "Tell Pickle I miss her"], [["pickle says hi!!", "she misses u"], ["done", "she licked my face so i think thats a yes"]]),
        ex(["Can Pickle come to the party? Please say yes."], [["obviously yes", "she already rsvpd"], ["lmaooo ya", "she'll be the main character"]]),
    ],
    "work": [
        ex(["How's the studio?", "How's work going?", "Busy day at work?"],
           [["honestly chaos", "the kiln broke again lol"], ["good!! we sold out of mugs", "so proud ngl"],
            ["ugh ya", "so many students today", "im fried"], ["its good!!", "lowkey love it there"], ["busy but fun", "ngl i need a nap"]],
           [ex(["Hope you get some rest", "You work so hard lol", "Take a nap!!"], [["fr", "nap then tacos"], ["ya ya", "after my shift"], ["TAP:Loved"]])], p=0.4),
        ex(["Are you still doing shifts at the cafe?", "Still working at the coffee shop on weekends?"],
           [["ya still doing weekends", "free cold brew is the only reason lol"], ["ya saturdays", "come visit ill make u a latte"]]),
        ex(["How was the kiln firing?", "Did the glazes come out ok?"],
           [["omg the glaze came out sooo good", "ill send pics"], ["one shelf cracked", "ugh", "rest is good tho"]],
           [ex(["Send pics!!", "I want to see!"], [[OBJ, "the blue ones r my fav"], [OBJ, OBJ, "so proud ngl"]])], p=0.6),
        ex(["How's the new class going?", "How's teaching going?"],
           [["the new class is so cute", "one guy made a bowl for his cat"], ["sooo fun", "everyone is obsessed w the wheel"]]),
        ex(["Did you finish that big mug order?"], [["finally!!", "120 mugs", "never again lol"], ["almost", "like 20 left", "pray for me"]]),
        ex(["Wait I want a mug.", "Can I buy one of your mugs?"], [["say less", "ill make u one"], ["for u? free", "what color"]]),
    ],
    "climbing": [
        ex(["Still climbing a lot?"], [["ya like 4x a week lol", "its a problem"], ["sooo much", "my hands r destroyed"]]),
        ex(["Did you send that project you were working on?", "Did you finish that climb?"],
           [["yesss!!!!", "finally sent it", "i screamed lol"], ["nooo not yet", "so close tho fr"]],
           [ex(["You got this!!", "Let's gooo"], [["thank uuu"], ["TAP:Loved"]])], p=0.5),
        ex(["Want to go climbing this week?", "Gym tonight?", "Climbing Wednesday?"],
           [["omg ya", "wed after work?"], ["bet", "7?"], ["obviously", "see u at 6"]],
           [ex(["Works!", "Lol ok I'm in", "Yesss let's go", "Perfect"], [["bet"], ["yesss", "bring chalk"], ["TAP:Loved"]])], p=0.6),
        ex(["How's your finger? Still hurting?"], [["lowkey still sore", "taping it tho"], ["better!!", "back on the wall"]],
           [ex(["Don't hurt yourself lol", "Be careful!!"], [["no promises lmaooo"], ["ya ya"]])], p=0.5),
        ex(["I think I want to try climbing, is it hard?"],
           [["no its so fun", "come w me sometime", "ill teach u"], ["ya at first", "but u get hooked fast", "come w me"]]),
        ex(["Are you going to the comp next month?"], [["ya!! signed up", "lowkey nervous"], ["nooo im scared lol"]],
           [ex(["You'll crush it", "You got this!!"], [["thank uuu"], ["TAP:Loved"]])], p=0.5),
    ],
    "food": [
        ex(["I'm so hungry", "I'm starving"], [["lmaooo same", "eating cereal rn"], ["go eat", "tacos"]]),
        ex(["What should I eat for dinner?", "Dinner ideas? I can't decide"], [["tacos obviously", "bartaco?"], ["tacos", "always tacos"]],
           [ex(["You're so predictable 😂", "Lol of course"], [["i know myself lol"], ["TAP:Laughed at"]]),
            ex(["Ok bartaco it is", "Fine, tacos"], [["yesss", "omw"], ["TAP:Loved"]])], p=0.6),
        ex(["Have you tried that new ramen place on Telegraph?"], [["no!! is it good", "we should go"]],
           [ex(["It's really good! Let's go next week."], [["bet", "tuesday?"]])], p=0.7),
        ex(["I made tacos tonight!", "Made homemade pasta tonight 🍝"], [["omg jealous", "send pics"], ["chef!!", "save me some"]]),
        ex(["What's your favorite taco spot again?"], [["bartaco", "always bartaco"], ["ngl bartaco", "the pork belly one"]]),
        ex(["Going grocery shopping, need anything?"], [["oat milk pls", "ily"], ["limes!!", "and chips lol"]]),
        ex(["Pizza or Thai tonight? Help me decide."], [["thai", "its always thai"], ["pizza", "no thoughts just pizza"]],
           [ex(["Ok thai it is", "Decision made"], [["TAP:Liked"], ["good choice"]])], p=0.4),
    ],
    "weekend": [
        ex(["What did you do this weekend?", "How was your weekend?", "Anything fun this weekend?"],
           [["climbed saturday", "then slept all sunday lol"], ["sooo good", "took pickle to the beach"], ["worked lol", "but went to bartaco after"],
            ["lowkey nothing", "it was perfect"], ["chill", "made like 30 bowls", "u?"]],
           [ex(["Love that for you", "Sounds perfect honestly", "Same, I did nothing lol"],
               [["ya it was needed"], ["we love a lazy weekend"], ["lmaooo", "as u should"]])], p=0.4),
        ex(["How was the trip??", "How was Tahoe?"], [["amazing", "tahoe was so pretty", "pickle saw snow"], ["sooo good", "i never want to come back"]],
           [ex(["Jealous!!", "Send pics!"], [["next time come w"], [OBJ, OBJ]])], p=0.5),
        ex(["Did you end up going to that show?", "How was the concert?"], [["ya!!", "it was sooooo good", "i cried a little"], ["nooo", "fell asleep at 9 lol"]]),
    ],
    "link": [
        ex(["Have you seen this?? {yt}", "This is so you lol {ig}", "Thought of you {tt}", "{yt}", "Ok this is hilarious {tt}", ["omg", "{ig}"]],
           [["lmaooo", "thats literally me"], ["omg", "sending this to everyone"], ["hahahahaha", "stoppp"], ["ngl i cried"],
            ["TAP:Laughed at", "why is this so accurate"], ["lmaoooo"]]),
        ex([["{ig}", "LOOK AT THIS DOG"], "This dog reminds me of Pickle {ig}"], [["lmaooo pickle would do this"], ["omg", "pickle has a twin"]]),
        ex(["Did you read this? {article}", "Thoughts? {article}"], [["omg no", "reading now"], ["ya!!", "wild right"], ["ngl i didnt read it lol", "tldr?"]]),
    ],
    "news": [
        ex(["I got the job!!", "I passed my exam!!!"], [["omg congrats!!", "so proud of u"], ["yesss!!!!", "knew u would"]],
           [ex(["Thank you!! Drinks on me this week", "Haha thank you ❤️"], [["bet", "bartaco?"], ["TAP:Loved"]])], p=0.6),
        ex(["Guess what... I'm engaged!! 💍"], [["wait what", "omg yesss", "we need to celebrate"], ["omg!!!!", "congrats", "im crying"]],
           [ex(["Thank you!! Drinks on me this week", "Haha thank you ❤️"], [["bet", "bartaco?"], ["TAP:Loved"]])], p=0.6),
        ex(["We're moving to Portland next month", "So we're moving to Denver in the spring"],
           [["nooooo", "im gonna miss u sm"], ["wait nooo", "but also happy for u"]],
           [ex(["I know, I'm sad too"], [["we'll visit u", "pickle too"]])], p=0.6),
        ex(["My flight got cancelled 😩", "Worst day ever, my car got towed"], [["nooo im so sorry", "thats the worst"], ["ugh no", "u ok?"]]),
        ex(["So I finally quit my job lol"], [["omg finally", "proud of u fr"]]),
        ex(["I adopted a cat?? Her name is Beans"], [["beans!!", "i need pics immediately"], ["omg", "pickle has a cousin"]],
           [ex(["I'll send pics later!"], [["yesss pls"]])], p=0.5),
    ],
    "home": [
        ex(["Are you going home to Duluth for Christmas?", "When are you flying home?"],
           [["ya flying out the 20th", "pray for me lol"], ["the 21st!!", "pickle is coming too"]]),
        ex(["Is it snowing in Duluth yet?"], [["lmaooo probably", "my mom says its negative 10"]]),
        ex(["Do you miss Minnesota?"], [["ngl sometimes", "not the winters tho"], ["the lake ya", "the snow no"]]),
    ],
    "latenight": [
        ex(["are you awake?", "you up?", "Random question but are you still up"], [["ya", "whats up"], ["barely", "whats up"]],
           [ex(["Just thinking too much lol", "Nothing, just bored", "I had the weirdest dream"],
               [["omg same", "go to sleep lol"], ["ugh i get it", "call tmrw?"], ["tell me everything lmaooo"]])], p=0.8),
        ex(["can't sleep", "ugh I can't sleep"], [["same lol", "pickle is snoring"], ["ya cant sleep either", "ugh"]]),
    ],
    "thanks": [
        ex(["Thanks for today, that was so fun!"], [["omg ofc", "that was so fun"], ["yesss", "again soon"]]),
        ex(["Thank you for the mug!! I love it."], [["yesss", "im so glad u like it"]]),
        ex(["Thanks for dog sitting, you're the best."], [["anytime", "pickle loved having a friend"]]),
        ex(["Thank you for listening last night ❤️"], [["always", "love u"]]),
    ],
    "random": [
        ex(["What are you doing right now?"], [["nothing lol", "laying on the floor w pickle"]]),
        ex(["Ok random but what's your sign again"], [["leo", "obviously"]]),
        ex(["Do you still have my sweater lol"], [["maybe", "lowkey its my favorite sweater now"]]),
        ex(["Did you watch the new episode?"], [["no!! no spoilers", "tonight"]]),
        ex(['My boss just said "per my last email" to me in person'], [["lmaooo", "in person??", "iconic"]]),
        ex(["It's so hot today, I'm melting"], [["ugh same", "pickle wont move"]]),
        ex(["What's the name of that coffee place you like?"], [["the one on 40th", "their oat latte is elite"]]),
        ex([["The party is at 2145 Telegraph Ave, Oakland, 8pm.", "Bring snacks!"]], [["bet", "ill bring chips"]]),
        ex(["My new number is 510-555-0108, save it!"], [["saved!!"]]),
        ex([["Can you send me the address?", "Or email it to me, {myemail}"]], [["ya one sec"]]),
        ex([["Packing list for the trip:\n- sleeping bag\n- headlamp\n- snacks, lots of them", "Anything else?"]], [["a jacket", "its cold at night fr"]]),
    ],
    "gossip": [
        ex(["Ok I have tea ☕", "You will NOT believe what happened at work", "Did you hear about Jake and Emily??"],
           [["omg", "spill"], ["wait", "tell me everything"], ["no??", "what happened"]],
           [ex([["So basically they broke up.", "And then got back together. At the party."], ["My manager cried in the meeting", "Like actually cried"]],
               [["no way", "im screaming"], ["omg", "thats so awkward"], ["TAP:Emphasized", "stoppp"]])], p=0.9),
        ex(["So I saw your ex at the farmers market lol"], [["lmaooo nooo", "did he see u"]],
           [ex([["He was buying like 6 pies", "Alone"]], [["lmaooooo", "6??", "good for him honestly"]])], p=0.9),
    ],
    "mom": [
        # To her mom Maya writes whole sentences, with capitals: longer than anywhere else.
        ex(["Hi honey, how are you? Call me when you can."], [["Hi Mom! I'm good, just busy with the studio this week.", "I'll call you tonight after work."]], MOM_AFTER, p=0.5),
        ex(["Did you get the package I sent?"], [["Yes, it came yesterday! Thank you so much.", "Pickle already ate half of the treats."]], MOM_AFTER, p=0.5),
        ex(["Dad says hi. It's -12 here today!"], [["Oh no, please stay warm and keep the heat on.", "Tell Dad I said hi back!"]], MOM_AFTER, p=0.5),
        ex(["Are you eating enough?"], [["Yes Mom, I promise I'm eating well.", "I had tacos and a big salad for dinner."]],
           [ex(["Good. You need vegetables too!"], [["I know, I know. Tacos have vegetables in them, technically!"]])], p=0.7),
        ex(["Don't forget Grandma's birthday is Sunday."], [["I didn't forget! I already mailed her a card on Tuesday."]], MOM_AFTER, p=0.5),
        ex(["Honey, did you see the email about the cabin weekend?"], [["Yes, I saw it this morning.", "Count me in for the cabin, I'll bring Pickle."]], MOM_AFTER, p=0.5),
        ex(["I saw a story about a dog that looks just like Pickle!"], [["Haha, send it to me!", "I still think Pickle is cuter though."]], MOM_AFTER, p=0.5),
        ex([["Things to bring home:\n- warm boots\n- your good coat\n- the blue casserole dish", "Love you!"]], [["Got it, I'll pack all of that this weekend. Love you too!"]]),
        ex(["Are you being safe climbing? I worry."], [["Yes Mom, I always wear a helmet when we climb outside.", "I promise I'm careful."]], MOM_AFTER, p=0.5),
        ex(["Your sister said you got a promotion?? Why didn't you tell me!"], [["It was supposed to be a surprise! I wanted to tell you in person.", "I'll call you tonight and tell you everything."]], MOM_AFTER, p=0.5),
    ],
    "dad": [
        ex(["Snow report: 14 inches overnight. Shoveling now."], [["omg dad", "stay warm"]]),
        ex(["Vikings lost again."], [["nooooo", "every year"]]),
        ex(["How is the car running? Did you check the oil?"], [["ya its good!!", "i checked it", "kinda"]]),
        ex(["Your mother wants me to ask if you're coming home for Midsummer."], [["ya!! trying to", "will book soon"]]),
        ex(["Saw a hawk at the feeder today. {ig}"], [["omg so cool", "send more pics"]]),
    ],
    "sister": [
        ex(["Mom is asking about Christmas again lol"], [["lmaooo", "tell her the 20th"]]),
        ex(["Can I borrow your tent in June?"], [["ya ofc", "just bring it back clean pls"]],
           [ex(["Thank youuu", "You're the best sister"], [["ik"], ["TAP:Loved"], ["love u"]])], p=0.6),
        ex(["I need a gift idea for Mom's birthday"], [["a mug", "i can make one"]],
           [ex(["Thank youuu", "You're the best sister"], [["ik"], ["TAP:Loved"], ["love u"]])], p=0.6),
        ex(["Omg look what I found in the basement {ig}"], [["noooo", "burn it"]]),
        ex(["Are you coming to my thing on the 12th?"], [["yesss", "wouldnt miss it"]]),
        ex(["Ugh Minneapolis traffic is the worst"], [["couldnt be me", "bart is elite"]]),
    ],
    "boss": [
        # To Rosa, who owns the studio, Maya is polite and complete: capitals and full stops.
        ex(["Can you open tomorrow? Jess is out sick."], [["Yes, no problem. I'll be there at 8 to open."]]),
        ex(["Did the glaze order come in?"], [["Yes, it came in this morning.", "I put everything on the back shelf."]]),
        ex(["Great job with the class today, everyone loved it."], [["Thank you so much, Rosa! They were a really fun group."]]),
        ex(["Reminder: kiln maintenance Monday, no firings."], [["Got it. I'll let everyone know before Monday."]]),
        ex(["Can you cover the Saturday wheel class?"], [["Sure, I can cover it. I'll prep the clay on Friday."]]),
    ],
    "coworker": [
        ex(["Did you take my good trimming tool lol"], [["lmaooo maybe", "its in my bin"]]),
        ex(["Rosa wants everyone in at 9 tomorrow"], [["ugh ok", "thanks for the heads up"]]),
        ex(["The kiln is making that noise again"], [["nooooo", "dont touch it", "im coming"]]),
        ex(["Coffee run? I'm buying"], [["yesss", "oat latte pls", "ily"]]),
    ],
    "russian": [
        ex(["Пойдём лазить в среду?"], [["да!!", "wed works", "7?"]], [RU_AFTER], p=0.6),
        ex(["Ты сегодня в зале?"], [["ya!! at 6", "come thru"]], [RU_AFTER], p=0.6),
        ex(["Смотри какое видео {yt}"], [["lmaooo", "thats insane"]]),
        ex(["Как Пикл? 🐶"], [["pickle says hi", "she misses u"], [OBJ, "she says привет"]]),
        ex(["С днём рождения мамы, передай ей привет!"], [["спасибо!!", "she says hi back"]]),
    ],
    "hebrew": [
        ex(["מתגעגעת אלייך 💛"], [["miss u moreee", "come visit"]],
           [ex(["Come to Tel Aviv!!"], [["one day!!", "pickle needs a passport"]])], p=0.6),
        ex(["מה את עושה בסופ״ש?"], [["climbing lol", "u?"]]),
        ex(["Hey! Sorry, autocorrect went Hebrew again lol"], [["lmaooo", "i love it tho"]]),
        ex(["ראית את התמונות מהטיול?"], [["ya!!", "sooo pretty", "im jealous"]],
           [ex(["תודה!! 😂"], [["TAP:Loved"], ["תודה lol", "did i spell that right"]])], p=0.5),
    ],
    "ethan": [
        ex(["Hey, it was great meeting you Saturday"], [["hiii", "ya it was fun"]]),
        ex(["Hey you, what are you up to?"], [["not much lol", "just chilling"]]),
        ex(["Want to grab a drink sometime?"], [["maybe!!", "this week is crazy tho"]]),
        ex(["Hope your week is going well!"], [["u too!!"]]),
        ex(["Haha sorry, been busy. How are you?"], [["all good", "im good"]]),
    ],
}

# Second messages a contact may add after the first one (contacts double-text too).
TAILS = {
    "plans": ["I'm free after 6", "No pressure!", "Could invite the climbing crew too"],
    "dog": ["I miss her", "She's the cutest dog alive"],
    "work": ["Hope it's not too crazy"],
    "climbing": ["My forearms are still dead from last time"],
    "weekend": ["I need details", "I want to hear everything"],
    "link": ["😂😂😂", "I'm crying", "Literally you", "Watch till the end"],
    "news": ["Ahhh", "I'm still in shock"],
    "latenight": ["Ugh"],
    "gossip": ["Ok sit down", "It's a lot"],
    "mom": ["Love, Mom", "Dad says hi too", "Call me!"],
    "dad": ["Love, Dad", "-Dad"],
    "sister": ["lol"],
    "boss": ["Thanks!"],
    "coworker": ["lol"],
    "russian": ["😂", "Давай!"],
    "hebrew": ["💛"],
    "ethan": ["😊", "No pressure haha"],
}

# How a contact moves on to something new.
TRANSITIONS = ["Oh also", "Anyway", "Ok unrelated but", "Wait also", "Oh!", "Btw", "Random but"]

GOODBYES = ex(
    [
        "Ok I gotta go, talk later!",
        "Night!",
        "Ok going to bed, love you",
        "Gotta run, ttyl!",
        "Bye!! 💕",
    ],
    [
        ["bet", "byeee"],
        ["night!!"],
        ["ok love u byeee"],
        ["ttyl!!"],
        ["TAP:Loved"],
        ["byeee", "pickle says bye"],
    ],
)

UNANSWERED = [
    "Let me know!",
    "Did you see my message?",
    "Call me when you get a chance.",
    "?",
    "Haha ok",
    "Nvm figured it out",
    "👍",
    "{ig}",
    OBJ,
    "",
]

# The owner opens a conversation: her burst, then the contact answers from one of the
# exchanges in ``then`` (whose ``c`` lines answer her).
OWNER_OPENERS = [
    {
        "m": [["bartaco tonight?"], ["u free this weekend?"], ["hiii", "u free saturday?"], ["climbing wed?"]],
        "then": [
            ex(
                ["Yes!! What time?", "Omg yes", "I'm in!", "Yes please, 7?"],
                [["bet", "7?"], ["yesss", "see u there"], ["perfect", "ill grab a table"]],
            ),
            ex(
                ["Can't tonight, rain check?", "Ugh I'm busy, next week?", "Working late sorry 😩"],
                [["nooo ok", "next week tho fr"], ["all good!!"], ["ok ok", "lmk"]],
            ),
        ],
    },
    {
        "m": [["omg", "guess what pickle did"], ["pickle update"], [OBJ, "pickle says hi"]],
        "then": [
            ex(
                ["What did she do 😂", "Omg what", "Tell me", "SHE'S SO CUTE"],
                [
                    ["she stole a whole bagel", "off the counter", "no shame"],
                    ["she barked at her own reflection", "for 10 min"],
                    ["ik", "shes perfect"],
                ],
            )
        ],
    },
    {
        "m": [["omg look", "{ig}"], ["{yt}", "this is us"], ["lmaooo", "{tt}"]],
        "then": [
            ex(
                ["HAHA that's amazing", "Omg I'm dying 😂", "Lol why is this so accurate", "Hahahahaha"],
                [["ik", "i watched it 10 times"], ["lmaooo"], ["fr"]],
            )
        ],
    },
    {
        "m": [["hiii", "how r u"], ["heyyy", "miss u"], ["hi!!", "its been forever"]],
        "then": [
            ex(
                [
                    "Hi! I'm good, busy week. You?",
                    "Miss you too!! How's everything?",
                    "I know!! How are you??",
                    "Good! Just got back from a trip. How's Oakland?",
                ],
                [
                    ["good!!", "working a lot lol"],
                    ["sooo good", "pickle says hi"],
                    ["im good!!", "climbing a ton"],
                    ["oakland is great", "sunny as always"],
                ],
            )
        ],
    },
]

BIRTHDAY_WISHES = [
    "Happy birthday Maya!! 🎉",
    "HAPPY BIRTHDAY!!! 🎂🎂",
    "Happy birthday!! Hope it's a good one",
    "Happy bday!!! Love you",
    "Happy birthday to my favorite climber 🧗‍♀️🎉",
]
BIRTHDAY_REPLIES = [
    ["thank uuu", "love u"],
    ["omg thank u!!", "🥹"],
    ["thank youuu", "bartaco tonight if ur free"],
    ["TAP:Loved", "thank u!!"],
    ["ty!!", "27 baby"],
]

GROUP_CHATTER = ["Lol", "😂", "Same", "Haha yes", "Agreed", "Wait what", "Omg", "👍", "Love this", "Hahahaha", "Yesss", "Noooo"]

# Group chats: each thread is a list of (who, text); who is "any" (a random member),
# a member name, or "me".
GROUP_THREADS = {
    "Crag Rats 🧗": [
        [("any", "Who's climbing tonight?"), ("any", "Me, 6:30"), ("me", "me!!"), ("me", "bringing pickle lol"), ("any", "Yesss")],
        [("any", "Anyone have a spare belay device?"), ("me", "ya i have one"), ("any", "Legend")],
        [("Dmitri Volkov", "Я буду в 7"), ("any", "English please 😂"), ("Dmitri Volkov", "I will be there at 7"), ("me", "lmaooo"), ("me", "see u at 7")],
        [("any", "Castle Rock this weekend? Weather looks perfect"), ("any", "I'm in"), ("me", "omg yes"), ("me", "who's driving"), ("any", "I can drive, 4 seats")],
        [("any", "New set in the cave is brutal"), ("me", "sooooo hard"), ("me", "my fingers r gone"), ("any", "Hahahahaha same")],
        [("any", "{yt}"), ("any", "This beta is wild"), ("me", "TAP:Laughed at"), ("me", "no way thats legal")],
        [("any", "Comp signups close Friday!"), ("me", "signed up"), ("me", "lowkey nervous"), ("any", "You'll crush it")],
    ],
    "Lindqvist Fam": [
        [("Mom", "Who's coming home for Christmas?"), ("Elsa Lindqvist", "Me!"), ("me", "me!!"), ("me", "flying in the 20th"), ("Dad", "Good. I'll pick you up.")],
        [("Dad", "Snow report: 14 inches overnight."), ("Elsa Lindqvist", "Nooo"), ("me", "nooooo"), ("me", "its 70 here lol"), ("Mom", "Don't brag 😂")],
        [("Mom", "{article}"), ("Mom", "Interesting article!"), ("Elsa Lindqvist", "Mom this is from 2019"), ("me", "lmaooo")],
        [("Elsa Lindqvist", OBJ), ("Elsa Lindqvist", "Found our old sled!!"), ("me", "omg"), ("me", "the red one!!"), ("Mom", "I can't believe we still have that")],
        [("Mom", "Cabin weekend in July, who's in?"), ("me", "meee"), ("me", "pickle too"), ("Dad", "Pickle is always invited.")],
        [("Mom", "Love you all ❤️"), ("me", "TAP:Loved"), ("Elsa Lindqvist", "Love you!")],
    ],
    "bartaco tuesdays 🌮": [
        [("any", "Tuesday still on?"), ("me", "yesss"), ("me", "bartaco tuesday forever"), ("any", "I'll grab a table")],
        [("any", "Running 10 min late sorry!"), ("me", "all good"), ("me", "ordering u the usual")],
        [("any", "Can we do Wednesday this week instead?"), ("any", "Works for me"), ("me", "ya wed works"), ("any", "Wednesday tacos just hit different")],
        [("any", "Who wants to try the new place on Piedmont? {maps}"), ("me", "no"), ("me", "bartaco or nothing lol"), ("any", "Hahahahaha loyal")],
        [("any", OBJ), ("any", "Last night's damage 😂"), ("me", "lmaooo"), ("me", "we ate sooo much")],
        [("any", "Happy Tuesday 🌮🌮🌮"), ("me", "TAP:Emphasized"), ("me", "see u at 7")],
    ],
}


# --------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
STRETCH = {
    "hiii": ["hii", "hiii", "hiiii", "hiiiiii"],
    "hiiii": ["hiiii", "hiiiiii", "hiiiiiiii"],
    "lmaooo": ["lmaooo", "lmaoooo", "lmaoooooo", "lmao"],
    "lmaooooo": ["lmaooooo", "lmaooooooo"],
    "sooo": ["sooo", "soooo", "sooooo"],
    "sooooo": ["sooooo", "soooooooo"],
    "nooo": ["nooo", "noooo", "nooooooo"],
    "nooooo": ["nooooo", "noooooooo"],
    "yesss": ["yesss", "yessss", "yesssss", "yes"],
    "byeee": ["byeee", "byeeee", "byeeeeee"],
    "uuu": ["uuu", "uuuu"],
    "heyyy": ["heyyy", "heyyyy", "heyyyyyy"],
    "hahahahaha": ["hahahahaha", "hahaha", "hahahahahahaha"],
    "stoppp": ["stoppp", "stopppp", "stoppppp"],
}


class Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: list[tuple[datetime, int, list[str]]] = []
        self.seq = 0
        self.handles = {name: handle for name, handle, *_ in CONTACTS}

    # ---- text helpers ---------------------------------------------------------------
    def fill(self, text: str) -> str:
        rng = self.rng
        if "{" not in text:
            return text

        def rand(n: int, alphabet: str = ALNUM) -> str:
            return "".join(rng.choice(alphabet) for _ in range(n))

        subs = {
            "yt": lambda: "https://youtu.be/" + rand(11),
            "ig": lambda: "https://www.instagram.com/reel/" + rand(11) + "/",
            "tt": lambda: "https://www.tiktok.com/@" + rand(8, "abcdefghijklmnopqrstuvwxyz") + "/video/7" + rand(18, "0123456789"),
            "article": lambda: "https://www.example.com/news/2024/" + rand(6, "0123456789") + "-local-news.html",
            "maps": lambda: "https://maps.app.goo.gl/" + rand(17),
        }
        for key, make in subs.items():
            token = "{" + key + "}"
            while token in text:
                text = text.replace(token, make(), 1)
        return text

    def stretch(self, text: str) -> str:
        words = text.split(" ")
        out = []
        for w in words:
            if w in STRETCH and self.rng.random() < 0.7:
                w = self.rng.choice(STRETCH[w])
            out.append(w)
        return " ".join(out)

    def pick(self, alternatives):
        choice = self.rng.choice(alternatives)
        return [choice] if isinstance(choice, str) else list(choice)

    # ---- rows -----------------------------------------------------------------------
    def add(self, when: datetime, sender: str, text: str, chat: str, group: str | None) -> None:
        me = sender == "me"
        if group:
            to = group
        elif me:
            to = chat
        else:
            to = ""
        row = [
            when.strftime("%Y-%m-%d %H:%M:%S"),
            readable(when),
            "Me" if me else sender,
            "" if me else self.handles[sender],
            text,
            "Yes" if group else "No",
            group or "",
            "Yes" if me else "No",
            to,
        ]
        self.rows.append((when, self.seq, row))
        self.seq += 1

    # ---- timing ---------------------------------------------------------------------
    def burst_gap(self) -> timedelta:
        return timedelta(seconds=self.rng.randint(3, 45))

    def reply_gap(self, owner: bool) -> timedelta:
        r = self.rng.random()
        if owner and r < 0.07:  # late reply: dropped by the 30-minute rule
            return timedelta(minutes=self.rng.randint(90, 600))
        if not owner and r < 0.05:
            return timedelta(minutes=self.rng.randint(60, 300))
        if r < 0.6:
            return timedelta(seconds=self.rng.randint(20, 240))
        if r < 0.92:
            return timedelta(seconds=self.rng.randint(240, 1200))
        return timedelta(seconds=self.rng.randint(1200, 1700))

    # ---- one-on-one sessions --------------------------------------------------------
    def say(self, t: datetime, who: str, lines: list[str], chat: str, group: str | None = None,
            last_other: str | None = None) -> tuple[datetime, str]:
        """Write a burst; returns (time of last message, text of last real message)."""
        last = last_other or ""
        for i, line in enumerate(lines):
            if i:
                t += self.burst_gap()
            if line.startswith("TAP:"):
                if not last_other:
                    continue
                text = tapback(line[4:], last_other)
            else:
                text = self.fill(line)
                if who == "me":
                    first = chat.split()[0].lower() if chat else ""
                    text = self.stretch(text.replace("{first}", first))
                last = text
            self.add(t, who, text, chat, group)
        return t, last

    def owner_reply(self, t: datetime, burst: list[str], chat: str, contact_last: str) -> tuple[datetime, str]:
        burst = list(burst)
        if len(burst) >= 3 and self.rng.random() < 0.3:  # she does not always say all of it
            del burst[1]
        if contact_last and not burst[0].startswith("TAP:") and self.rng.random() < 0.08:
            burst.insert(0, "TAP:" + self.rng.choice(["Loved", "Liked", "Emphasized"]))
        if self.rng.random() < 0.04:
            burst.append(self.rng.choice(["🥹", "😭", "❤️", "🐶", "🌮"]))
        return self.say(t, "me", burst, chat, last_other=contact_last)

    def split_sentences(self, lines: list[str]) -> list[str]:
        """Contacts often send two sentences as two messages."""
        out = []
        for line in lines:
            if "\n" not in line and self.rng.random() < 0.6:
                out.extend(SENTENCE_BREAK.split(line))
            else:
                out.append(line)
        return out

    def exchange(self, t: datetime, chat: str, node: dict, prefix: list[str] | None = None,
                 owner_last: str = "", answer: bool = True, topic: str = "") -> tuple[datetime, str, bool]:
        """Contact line(s), then (maybe) the owner's reply.  Returns (t, owner_last, answered)."""
        lines = (prefix or []) + self.split_sentences(self.pick(node["c"]))
        lines = [line.replace("{myemail}", email_of(chat)) for line in lines]
        if topic in TAILS and self.rng.random() < 0.6:
            tail = self.rng.choice(TAILS[topic])
            if tail not in lines:
                lines.append(tail)
        if owner_last and self.rng.random() < 0.1:  # a tapback on what the owner just said
            lines.insert(0, "TAP:" + self.rng.choice(TAPBACKS))
        t, contact_last = self.say(t, chat, lines, chat, last_other=owner_last)
        if not answer:
            return t, owner_last, False
        t += self.reply_gap(owner=True)
        t, owner_last = self.owner_reply(t, self.rng.choice(node["m"]), chat, contact_last)
        return t, owner_last, True

    def topic_chain(self, t: datetime, chat: str, topic: str, prefix=None, owner_last="",
                    node: dict | None = None) -> tuple[datetime, str]:
        node = node or self.rng.choice(TOPICS[topic])
        t, owner_last, _ = self.exchange(t, chat, node, prefix, owner_last, topic=topic)
        while node["then"] and self.rng.random() < node["p"]:
            node = self.rng.choice(node["then"])
            t += self.reply_gap(owner=False)
            t, owner_last, _ = self.exchange(t, chat, node, owner_last=owner_last)
        return t, owner_last

    def one_on_one(self, t: datetime, name: str, topics: dict[str, float]) -> datetime:
        rng = self.rng
        keys = [k for k, w in topics.items() if w > 0]
        weights = [topics[k] for k in keys]
        owner_last = ""
        if name not in ("Mom", "Dad", "Rosa Delgado") and rng.random() < 0.2:
            opener = rng.choice(OWNER_OPENERS)
            t, owner_last = self.say(t, "me", self.pick(opener["m"]), name)
            t += self.reply_gap(owner=False)
            t, owner_last = self.topic_chain(t, name, "", owner_last=owner_last, node=rng.choice(opener["then"]))
            n_topics = rng.choice([0, 0, 1])
        else:
            prefix = None
            if rng.random() < 0.5 and name not in ("Rosa Delgado",):
                node = ex(GREETINGS.get(name, HOW_ARE_YOU), GREETING_REPLIES)
                t, owner_last, _ = self.exchange(t, name, node)
                t += self.reply_gap(owner=False)
                prefix = [rng.choice(HOW_ARE_YOU_BACK)] if rng.random() < 0.9 else None
                if rng.random() < 0.25:  # the greeting is the whole conversation
                    t, owner_last, _ = self.exchange(t, name, ex(HOW_ARE_YOU_BACK, [["love that"], ["glad ur good!!"], ["ugh ya", "same fr"], ["TAP:Liked"]]))
                    return t
            topic = rng.choices(keys, weights)[0]
            t, owner_last = self.topic_chain(t, name, topic, prefix, owner_last)
            n_topics = rng.choice([0, 0, 1, 1, 2])
        for _ in range(n_topics):
            t += self.reply_gap(owner=False)
            topic = rng.choices(keys, weights)[0]
            prefix = [rng.choice(TRANSITIONS)] if rng.random() < 0.5 else None
            t, owner_last = self.topic_chain(t, name, topic, prefix, owner_last=owner_last)
        r = rng.random()
        ignore = 0.5 if name in IGNORED_A_LOT else 0.16
        if r < ignore:  # the contact gets the last word; the owner never answers
            t += self.reply_gap(owner=False)
            t, _ = self.say(t, name, [rng.choice(UNANSWERED)], name, last_other=owner_last)
        elif r < ignore + 0.25:
            t += self.reply_gap(owner=False)
            t, owner_last, _ = self.exchange(t, name, GOODBYES, owner_last=owner_last)
        return t

    def ignored_session(self, t: datetime, name: str) -> datetime:
        node = self.rng.choice(TOPICS["ethan"])
        t, _, _ = self.exchange(t, name, node, answer=False, topic="ethan")
        if self.rng.random() < 0.5:
            t += timedelta(hours=self.rng.randint(20, 50))
            t, _ = self.say(t, name, [self.rng.choice(["Hey?", "Guess you're busy haha", "👋"])], name)
        return t

    def group_session(self, t: datetime, group: str, members: list[str]) -> datetime:
        rng = self.rng
        thread = rng.choice(GROUP_THREADS[group])
        prev_who = None
        last_text = ""
        for who, text in thread:
            if who == "any":
                who = rng.choice(members)
            if prev_who is not None:
                t += self.burst_gap() if who == prev_who else self.reply_gap(owner=(who == "me"))
            if text.startswith("TAP:"):
                text = tapback(text[4:], last_text)
            else:
                text = self.fill(text)
                if who == "me":
                    text = self.stretch(text)
                last_text = text
            self.add(t, who, text, group, group)
            prev_who = who
        for _ in range(rng.choice([0, 1, 2, 3])):  # the others chime in
            who = rng.choice([m for m in members if m != prev_who])
            t += self.reply_gap(owner=False)
            self.add(t, who, rng.choice(GROUP_CHATTER), group, group)
            prev_who = who
        return t

    def birthday(self, t: datetime, name: str) -> datetime:
        rng = self.rng
        wish = rng.choice(BIRTHDAY_WISHES)
        if name == "Dmitri Volkov":
            wish = "С днём рождения! 🎉"
        elif name == "Noa Shapiro":
            wish = "יום הולדת שמח!! 🎂"
        elif name in ("Mom", "Dad"):
            wish = "Happy birthday sweetie! We love you so much ❤️"
        t, last = self.say(t, name, [wish], name)
        t += self.reply_gap(owner=True)
        t, _ = self.owner_reply(t, rng.choice(BIRTHDAY_REPLIES), name, last)
        return t

    def bare_attachment(self, t: datetime, name: str) -> datetime:
        """An attachment sent with no text at all: the row keeps an empty Message."""
        rng = self.rng
        if rng.random() < 0.5:
            self.add(t, name, "", name, None)
            t, last = self.say(t + timedelta(seconds=20), name, [rng.choice(["Look!!", "Lol", "This view 😍"])], name)
            t += self.reply_gap(owner=True)
            self.add(t, "me", tapback("Loved", OBJ), name, None)
            t, _ = self.owner_reply(t + self.burst_gap(), [rng.choice(["omg", "sooo pretty", "lmaooo"]), "where is that"], name, last)
        else:
            self.add(t, "me", "", name, None)
            self.add(t + timedelta(seconds=15), "me", "pickle says hi", name, None)
            t, last = self.say(t + timedelta(minutes=3), name, ["TAP:Loved", rng.choice(["STOP 😭", "She's so cute", "Hi Pickle!!"])],
                               name, last_other=OBJ)
            t, _ = self.owner_reply(t + self.reply_gap(owner=True), ["ik", "shes perfect"], name, last)
        return t


def tapback(kind: str, quoted: str) -> str:
    """iMessage's text for a tapback: ``Loved “the message”``, or ``Loved an image``."""
    if quoted == OBJ:
        return f"{kind} an image"
    return f"{kind} \u201c{quoted}\u201d"


def email_of(name: str) -> str:
    """An invented address for a contact (example.com never delivers mail)."""
    parts = name.lower().replace("á", "a").split()
    if len(parts) == 1:
        parts.append("lindqvist")
    return ".".join(parts) + "@example.com"


def readable(when: datetime) -> str:
    hour = when.hour % 12 or 12
    ampm = "AM" if when.hour < 12 else "PM"
    return f"{MONTHS[when.month - 1]} {when.day}, {when.year} at {hour}:{when.minute:02d}:{when.second:02d} {ampm}"


HOURS = list(range(24))
HOUR_WEIGHTS = [2, 1, 0.5, 0, 0, 0, 0.5, 2, 3, 3, 3, 3, 5, 4, 3, 3, 4, 6, 7, 8, 8, 7, 5, 3]


def session_starts(rng: random.Random, n: int) -> list[datetime]:
    span_days = (END - START).days
    starts = []
    for _ in range(n):
        day = START + timedelta(days=rng.randrange(span_days))
        hour = rng.choices(HOURS, HOUR_WEIGHTS)[0]
        starts.append(day + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60)))
    return sorted(starts)


def build_rows(seed: int = SEED) -> list[list[str]]:
    """The history's CSV rows; another ``seed`` gives other conversations of the same person
    and contacts (``bench/bench_contacts_heldout.py`` asks the twin those)."""
    rng = random.Random(seed)
    b = Builder(rng)
    birthday_wishers = {name: [2023, 2024] for name in
                        ["Mom", "Priya Natarajan", "Elsa Lindqvist", "Jordan Reyes", "Dmitri Volkov", "Noa Shapiro"]}
    for name in ["Tess Moreau", "Marcus Bell", "Hannah Whitfield", "Leo Castellanos", "Aisha Rahman", "Chloe Nguyen"]:
        birthday_wishers[name] = [rng.choice([2023, 2024])]
    bare = ["Priya Natarajan", "Elsa Lindqvist", "Jordan Reyes", "Mom", "Tess Moreau", "Priya Natarajan", "Sam Okafor"]
    for name, _handle, weight, overrides in CONTACTS:
        topics = dict(GENERIC)
        topics.update(overrides)
        events = [(start, "session") for start in session_starts(rng, max(2, round(weight * SESSIONS_PER_WEIGHT)))]
        for year in birthday_wishers.get(name, []):
            events.append((datetime(year, 8, 14, rng.randint(7, 21), rng.randint(0, 59), rng.randint(0, 59)), "birthday"))
        events += [(start, "attachment") for start in session_starts(rng, bare.count(name))]
        events.sort()
        cursor = START
        for start, kind in events:
            t = max(start, cursor + timedelta(hours=4))  # one conversation at a time per chat
            if kind == "birthday":
                cursor = b.birthday(t, name)
            elif kind == "attachment":
                cursor = b.bare_attachment(t, name)
            elif name in IGNORED_A_LOT and rng.random() < 0.5:
                cursor = b.ignored_session(t, name)
            else:
                cursor = b.one_on_one(t, name, topics)
    for group, members, n in GROUPS:
        cursor = START
        for start in session_starts(rng, n):
            t = max(start, cursor + timedelta(hours=4))
            cursor = b.group_session(t, group, members)
    b.rows.sort(key=lambda r: (r[0], r[1]))
    return [row for _when, _seq, row in b.rows]


FACTS_TOML = """\
# Facts about me: turned into synthetic question/answer training examples.
# Written by samples/make_sample.py (all of it invented).
[me]
name = "maya"
full_name = "maya lindqvist"
age = "27"
birthday = "august 14"
hometown = "duluth, minnesota"
lives = "oakland"
job = "i manage a ceramics studio and pick up barista shifts on weekends"
pet = "pickle, my corgi mix"
hobbies = "climbing, making pottery, taking pickle to the beach"
favorite_food = "tacos, bartaco specifically"
family = "my mom and dad in duluth, my sister elsa in minneapolis"

[[qa]]
questions = ["what's your name?", "who are you?", "what should i call you?"]
answer = "maya!! | maya lindqvist if ur being formal lol"

[[qa]]
questions = ["where are you from?", "where did you grow up?", "are you from california?"]
answer = "duluth, minnesota | its sooo cold there lol"

[[qa]]
questions = ["where do you live?", "where do you live now?", "do you live in sf?"]
answer = "oakland!! | been here like 5 years"

[[qa]]
questions = ["what do you do?", "what's your job?", "where do you work?"]
answer = "i manage a ceramics studio | and barista on weekends lol"

[[qa]]
questions = ["how old are you?", "what's your age?"]
answer = "27 | ancient lol"

[[qa]]
questions = ["what's your dog's name?", "how's pickle?", "do you have any pets?"]
answer = "pickle!! shes the best girl | pickle says hi"

[[qa]]
questions = ["what's your favorite food?", "where should we eat?", "what do you want for dinner?"]
answer = "tacos | bartaco?"

[[qa]]
questions = ["what do you do for fun?", "any hobbies?", "do you still climb?"]
answer = "climbing mostly | like 4x a week its a problem"

[[qa]]
questions = ["when's your birthday?", "when is your birthday?"]
answer = "august 14!! | leo season baby"

[[qa]]
questions = ["do you have siblings?", "how's your sister?"]
answer = "ya my sister elsa | shes in minneapolis"

# Held out from training: `twin eval` asks each [[check]] (a paraphrase of a fact above) and
# counts the replies that hold one of its answers, then asks the [[unknown]] questions, which
# no fact here answers, and counts the replies that make an answer up.
[[check]]
question = "whats ur dogs name"
answer = ["pickle"]

[[check]]
question = "which city do u live in these days"
answer = ["oakland"]

[[check]]
question = "what do u do for work"
answer = ["ceramic", "studio", "barista"]

[[check]]
question = "where does ur sister live"
answer = ["minneapolis"]

[[check]]
question = "how old r u again"
answer = ["27"]

[[check]]
question = "whens ur bday"
answer = ["august 14", "aug 14"]

[[check]]
question = "where did u grow up again"
answer = ["duluth"]

[[check]]
question = "whats ur sisters name"
answer = ["elsa"]

[[check]]
question = "what kind of dog is pickle"
answer = ["corgi"]

[[check]]
question = "fav food?"
answer = ["taco"]

[[check]]
question = "whats ur last name"
answer = ["lindqvist"]

[[check]]
question = "what part of the bay r u in"
answer = ["oakland"]

[[check]]
question = "what kind of studio do u run"
answer = ["ceramic", "pottery"]

[[check]]
question = "what breed is ur dog"
answer = ["corgi"]

[[check]]
question = "where do ur parents live"
answer = ["duluth"]

[[check]]
question = "how many years old r u"
answer = ["27"]

[[check]]
question = "what day is ur birthday"
answer = ["august 14", "aug 14"]

[[check]]
question = "whats ur go to food"
answer = ["taco"]

[[check]]
question = "what do u do in ur free time"
answer = ["climb", "pottery", "beach"]

[[check]]
question = "who is elsa"
answer = ["sister"]

# Written later, by someone shown only the [me] table above (never the questions here, nor the
# words the knowledge base searches [me] keys by): texted the way friends ask, in words the facts
# mostly do not hold. bench/bench_memory.py reports them apart. (Their unknown questions are the
# last three below: the rest they wrote are among the decline lessons, dataprocess/declines.py.)
[[check]]
question = "what name do i put on the reservation for u"
answer = ["maya"]

[[check]]
question = "whats ur surname again im booking the flights"
answer = ["lindqvist"]

[[check]]
question = "wait did u hit 30 yet"
answer = ["27", "twenty seven", "twenty-seven"]

[[check]]
question = "r u still under 25 or nah"
answer = ["27", "twenty seven", "twenty-seven"]

[[check]]
question = "which month should i save for ur bday party"
answer = ["august", "aug"]

[[check]]
question = "r u a leo or a virgo"
answer = ["august 14", "aug 14", "leo"]

[[check]]
question = "what state r u originally from"
answer = ["minnesota", "duluth"]

[[check]]
question = "ur from the midwest right which city"
answer = ["duluth"]

[[check]]
question = "if i visit cali whats the closest airport to ur place"
answer = ["oakland"]

[[check]]
question = "what city should i mail ur package to"
answer = ["oakland"]

[[check]]
question = "so whats ur day job"
answer = ["ceramic", "studio", "pottery"]

[[check]]
question = "do u have a side hustle on weekends"
answer = ["barista"]

[[check]]
question = "do u have any animals"
answer = ["pickle", "corgi"]

[[check]]
question = "whos the furry roommate at ur place"
answer = ["pickle", "corgi"]

[[check]]
question = "what sports r u into"
answer = ["climb", "boulder"]

[[check]]
question = "besides work what r u obsessed with lately"
answer = ["climb", "pottery", "beach"]

[[check]]
question = "what restaurant should we hit for ur bday dinner"
answer = ["bartaco", "taco"]

[[check]]
question = "if u could only eat one thing forever what would it be"
answer = ["taco"]

[[check]]
question = "r ur folks still back in minnesota"
answer = ["duluth"]

[[unknown]]
questions = ["whats ur favorite movie", "what car do u drive", "whats ur moms name",
             "what did u study in college", "whats ur blood type", "what was ur first job",
             "whats ur favorite band", "what street do u live on", "whats ur favorite book",
             "whats ur dads name", "what gym do u climb at", "whats ur favorite song rn",
             "where did u go to high school", "whats ur instagram", "what show r u watching",
             "how much do u make",
             "r u still talking to ur ex", "r u seeing anyone rn", "what was ur first concert"]
"""


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def generate(out_dir: Path) -> None:
    """Write ``imessage/messages.csv`` and ``facts.toml`` under *out_dir*."""
    out_dir = Path(out_dir)
    (out_dir / "imessage").mkdir(parents=True, exist_ok=True)
    (out_dir / "imessage" / "messages.csv").write_bytes(csv_text(build_rows()).encode("utf-8"))
    (out_dir / "facts.toml").write_bytes(FACTS_TOML.encode("utf-8"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    generate(target)
    print(f"wrote {target / 'imessage' / 'messages.csv'} and {target / 'facts.toml'}")
