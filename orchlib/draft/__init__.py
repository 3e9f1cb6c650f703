"""`doit draft`: an agent writes a plan from a goal; orchlib validates it round by round.

The modules, in the order a draft goes through them: `request` (the goal and the agent),
`store` (the draft's files under `.orch/drafts/` and its saved state), `prompting` (the
prompt from `templates/draft.md.j2`), `dispatch` (one round of the agent, through the same
profiles, process gate and marker reader as a task attempt), `validate` (exactly what
`doit` checks), `yamlout` (the plan as written into `plans/`), `review` (what is printed
for the person approving it), `rounds` (the loop) and `command` (the doit command).
"""
