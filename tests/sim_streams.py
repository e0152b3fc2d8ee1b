"""A stream reader for testbenches on the Amaranth simulator."""


async def taken_beats(ctx, port, rng, ready_rate: float):
    """The beats taken from stream ``port`` (an async generator), its ``ready`` high at
    random with probability ``ready_rate``; asserts the stream rule on the way: a beat
    offered and not taken is offered again unchanged."""
    held = None
    while True:
        ctx.set(port.ready, rng.random() < ready_rate)
        valid, ready, payload = ctx.get(port.valid), ctx.get(port.ready), ctx.get(port.payload)
        if held is not None:
            assert valid and payload == held, "a waiting beat changed or was withdrawn"
        held = payload if valid and not ready else None
        if valid and ready:
            yield payload
        await ctx.tick()
