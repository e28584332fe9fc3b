"""The flows the browser tests run, and the secret canary that must never reach a page."""
from __future__ import annotations

CANARY = "canary-7f3a9c-SECRET"

DEMO = f"""
name: demo
inputs:
  n: {{type: integer, default: 6}}
env:
  API_KEY: {{secret: true, required: true}}
secret_vars: [token]
vars:
  counter: 0
  token: "{CANARY}"
  note: "{'long text ' * 40}"
steps:
  - id: first
    vars:
      counter: "{{{{ vars.counter + 1 }}}}"
  - id: use_key
    tool: shell
    with: {{run: "echo key={{{{ env.API_KEY }}}} token={{{{ vars.token }}}}"}}
  - id: items
    foreach: "{{{{ range(inputs.n) | list }}}}"
    max_failures: 10
    do:
      id: one
      tool: python
      with: {{code: "def main(x, fixed):\\n    if x % 3 == 1 and not fixed:\\n        raise ValueError(f'bad item {{x}}')\\n    return x", args: {{x: "{{{{ item }}}}", fixed: "{{{{ vars.fixed | default(false) }}}}"}}}}
      vars:
        counter: "{{{{ vars.counter + 1 }}}}"
  - id: gate
    tool: pause
    with: {{message: "approve the batch?"}}
  - id: last
    vars:
      counter: "{{{{ vars.counter + 100 }}}}"
      approved_seen: "{{{{ vars.approved | default(false) }}}}"
outputs:
  total: "{{{{ vars.counter }}}}"
"""

OTHER = """
name: other
steps:
  - id: only
    vars:
      done: true
outputs:
  done: "{{ vars.done }}"
"""

BROKEN = """
name: broken
steps:
  - id: crash
    tool: python
    with: {code: "def main():\\n    return 1 / 0"}
"""
