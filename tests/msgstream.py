#!/usr/bin/env python3
"""Write a synthetic temporal message stream (`src dst ts` lines) to stdout.

A check of how `triad train` generalises beyond CollegeMsg, on a stream
whose new links come from several mechanisms at once. Members join over
two years (more of them early); each event has a sender, drawn in
proportion to past activity 80% of the time and uniformly otherwise, who
messages
  - an existing contact (probability REPEAT),
  - a random contact of a random contact (FOF: a two-step walk),
  - a member who received a message recently (POPULAR: drawn from the
    last 20,000 receptions, so the popular members change over time),
  - or anyone (the rest).
Usage: msgstream.py SEED MEMBERS EVENTS REPEAT FOF POPULAR > file.txt
The README's figures used: msgstream.py 1 100000 1000000 0.5 0.2 0.15
(975,901 lines after self-messages are dropped; about 7 s).
"""
import random
import sys


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    seed, members, events = (int(a) for a in sys.argv[1:4])
    p_repeat, p_fof, p_popular = (float(a) for a in sys.argv[4:7])
    if members < 200 or events < 1 or p_repeat + p_fof + p_popular > 1:
        sys.exit("msgstream.py: need MEMBERS >= 200, EVENTS >= 1 and "
                 "REPEAT + FOF + POPULAR <= 1")
    rng = random.Random(seed)
    contacts = [[] for _ in range(members)]
    senders = []    # one entry per join and per message sent
    received = []   # recent receivers, oldest first
    t0, span = 1_500_000_000, 2 * 365 * 86400
    joined = 100
    out = sys.stdout
    for i in range(events):
        ts = t0 + span * i // events
        while joined < 100 + int((members - 100) * (i / events) ** 0.7):
            senders.append(joined)
            joined += 1
        if senders and rng.random() < 0.8:
            u = rng.choice(senders)
        else:
            u = rng.randrange(joined)
        r = rng.random()
        v = None
        if r < p_repeat and contacts[u]:
            v = rng.choice(contacts[u])
        elif r < p_repeat + p_fof and contacts[u]:
            w = rng.choice(contacts[u])
            if contacts[w]:
                v = rng.choice(contacts[w])
        elif r < p_repeat + p_fof + p_popular and received:
            v = received[rng.randrange(max(0, len(received) - 20000),
                                       len(received))]
        if v is None:
            v = rng.randrange(joined)
        if v == u:
            continue
        contacts[u].append(v)
        contacts[v].append(u)
        senders.append(u)
        received.append(v)
        if len(received) > 200000:
            del received[:100000]
        out.write("%d %d %d\n" % (u + 1, v + 1, ts))


if __name__ == "__main__":
    main()
