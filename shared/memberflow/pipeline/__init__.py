"""The event pipeline: the envelope intake queues, and the generic worker every consumer runs on.

`envelope` (what travels on a queue), `policy` (pure: what happens to a message whose work failed), `health`
(is the service as a whole failing?), `worker` (one message: parse, dispatch to the consumer's handler, decide).
"""
