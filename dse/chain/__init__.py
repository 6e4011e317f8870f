"""What the CNN and the LLM halves of dse share about a chain of stages on devices: the
link between neighbours (``dse.chain.links``), the external-memory channel rule
(``dse.chain.channels``) and the plan (``dse.chain.plan``)."""
