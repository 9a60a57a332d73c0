// Small templates, written for Pargs, that exercise the Jinja features chat templates use one at a time.
// render-goldens.mjs renders them with @huggingface/jinja, render_jinja2.py with Jinja2; the C# test checks both.
const msgs = [
  { role: "system", content: "Sys" },
  { role: "user", content: "  Hello World  " },
  { role: "assistant", content: "Hi there", tool_calls: [{ function: { name: "f", arguments: { a: 1, b: [true, null, "x"] } } }] },
  { role: "user", content: "Bye" },
];

export const features = [
  // statements
  { name: "for-loop-variables", template: "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }};{% endfor %}" },
  { name: "for-else", template: "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in [1] %}{{ x }}{% else %}empty{% endfor %}" },
  { name: "for-filter", template: "{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content | trim }} {% endfor %}" },
  { name: "for-unpack-items", template: "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}" },
  { name: "for-dict-keys", template: "{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}" },
  { name: "for-string", template: "{% for c in 'héllo' %}[{{ c }}]{% endfor %}" },
  { name: "nested-loops", template: "{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }} {% endfor %}{% endfor %}" },
  { name: "loop-previtem-nextitem", template: "{% for x in [1, 2, 3] %}{{ loop.previtem | default('-') }}<{{ x }}>{{ loop.nextitem | default('-') }} {% endfor %}" },
  { name: "loop-cycle", template: "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}" },
  { name: "break-continue", template: "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}" },
  { name: "if-elif-else", template: "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else %}many{% endif %} {% endfor %}" },
  { name: "set-scoping-in-loop", template: "{% set x = 'outer' %}{% for i in range(2) %}{% set x = 'inner' ~ i %}{{ x }} {% endfor %}{{ x }}" },
  { name: "namespace", template: "{% set ns = namespace(count=0, last='') %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}" },
  { name: "block-set", template: "{% set greeting %}Hello {{ messages[1].content | trim }}!{% endset %}[{{ greeting }}]" },
  { name: "block-set-filtered", template: "{% set text | upper %}  shout {{ 1 + 1 }}  {% endset %}[{{ text }}]" },
  { name: "tuple-set", template: "{% set a, b = 1, 'two' %}{{ a }} {{ b }}" },
  { name: "macro-defaults", template: "{% macro tag(name, open='<', close='>') %}{{ open }}{{ name }}{{ close }}{% endmacro %}{{ tag('a') }}{{ tag('b', '[', close=']') }}" },
  { name: "macro-recursive", template: "{% macro count(n) %}{{ n }}{% if n > 0 %},{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(5) }}" },
  { name: "macro-varargs-kwargs", template: "{% macro f(a) %}{{ a }}|{{ varargs | join(',') }}|{{ kwargs.x }}{% endmacro %}{{ f(1, 2, 3, x='kw') }}" },
  { name: "call-block", template: "{% macro box(title) %}[{{ title }}: {{ caller() }}]{% endmacro %}{% call box('T') %}inside {{ messages | length }}{% endcall %}" },
  { name: "call-block-arguments", template: "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}<{{ x * 10 }}>{% endcall %}" },
  { name: "filter-block", template: "{% filter upper %}hello {{ 'world' }}{% endfilter %}" },
  { name: "comments", template: "a{# a comment #}b{#- trimmed -#}   c" },
  // whitespace control
  { name: "whitespace-control", template: "x  {{- ' y ' -}}  z\n  {%- if true %}\n  inner\n  {%- endif %}\nend" },
  { name: "trim-lstrip-blocks", template: "line1\n    {% if true %}\n    kept indent\n    {% endif %}\nline2\n  {# comment #}\nline3 {% if true %}x{% endif %}\n" },
  { name: "raw-block", template: "a\n  {% raw %}\n{{ not rendered }} {% if %}\n  {% endraw %}\nb {%- raw -%}  x  {%- endraw -%}  c" },
  { name: "plus-markers", template: "a\n  {%+ if true +%}\n  b\n  {% endif %}\nc" },
  { name: "expression-no-trim", template: "a\n  {{ 'b' }}\nc\n{{ 'd' }}\n" },
  // expressions
  { name: "arithmetic", template: "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1.5 + 1 }} {{ 10 - 2 - 3 }}" },
  { name: "string-concat", template: "{{ 'a' + 'b' }} {{ 'n' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }}" },
  { name: "comparisons", template: "{{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 'x' != 'y' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}" },
  { name: "logic", template: "{{ true and 'yes' }} {{ false or 'fallback' }} {{ '' or 0 or 'last' }} {{ not none }} {{ not [] }} {{ 'x' if none else 'y' }}" },
  { name: "in-operator", template: "{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1, 2] }}" },
  { name: "conditional-expression", template: "{% for m in messages %}{{ m.role if m.role != 'system' else 'SYS' }} {% endfor %}" },
  { name: "literals", template: "{{ [1, 'two', none, true] | tojson }} {{ {'k': [1, {'n': none}]} | tojson }} {{ (1, 2) | length }} {{ 'adj' 'acent' }}" },
  { name: "string-escapes", template: "{{ 'tab\\there' }}|{{ \"quote\\\"s\" }}|{{ 'new\\nline' }}|{{ 'uni\\u00e9' }}" },
  { name: "subscript-and-attribute", template: "{{ messages[1]['content'] }}|{{ messages[-1].content }}|{{ messages[2].tool_calls[0].function.arguments.b[2] }}" },
  { name: "slicing", template: "{{ messages[1:3] | map(attribute='role') | join(',') }} {{ messages[::-1][0].role }} {{ 'abcdef'[1:4] }} {{ 'abcdef'[::2] }} {{ 'abcdef'[-2:] }} {{ [1, 2, 3, 4][:-1] }}" },
  { name: "print-values", template: "{{ none }} {{ true }} {{ 3 }} {{ [1, 'a'] }} {{ {'a': 'b'} }} {{ missing }}" },
  // tests
  { name: "tests", template: "{{ x is defined }} {{ messages is defined }} {{ none is none }} {{ 'a' is string }} {{ 3 is number }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 3 is iterable }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 1 is eq 1 }} {{ 'b' is in 'abc' }} {{ none is not none }} {{ x is undefined }} {{ true is boolean }} {{ 1 is integer }} {{ 1.5 is float }} {{ 'abc' is lower }} {{ 'ABC' is upper }}" },
  { name: "undefined-handling", template: "[{{ messages[0].missing }}]{% if messages[0].missing %}yes{% else %}no{% endif %}[{{ missing | default('dflt') }}][{{ '' | default('empty', true) }}][{{ missing | length }}]{% for x in missing %}never{% endfor %}" },
  // filters
  { name: "filter-trim-upper-lower", template: "[{{ '  x y  ' | trim }}][{{ 'xxhixx' | trim('x') }}][{{ 'MiXed' | upper }}][{{ 'MiXed' | lower }}][{{ 'hello world' | capitalize }}][{{ 'hello wORLD-foo bar' | title }}]" },
  { name: "filter-replace-join", template: "{{ 'a-b-c' | replace('-', '+') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ [1, 2, 3] | join('|') }} {{ messages | join(', ', attribute='role') }}" },
  { name: "filter-length-first-last", template: "{{ messages | length }} {{ 'héllo' | length }} {{ messages | first | attr('role') }} {{ (messages | last).role }} {{ 'abc' | first }} {{ [3, 1, 2] | last }}" },
  { name: "filter-list-string-items", template: "{{ 'abc' | list }} {{ 42 | string }} {{ {'a': 1, 'b': 2} | items | list }} {{ [1, 2] | string }}" },
  { name: "filter-select-reject", template: "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | map('trim') | join(';') }} {{ messages | rejectattr('role', 'in', ['user', 'system']) | map(attribute='role') | list }} {{ [0, 1, 2, 3] | select('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ [1, 2, 3] | reject('even') | list }}" },
  { name: "filter-selectattr-defined", template: "{{ messages | selectattr('tool_calls', 'defined') | list | length }} {{ messages | selectattr('tool_calls') | map(attribute='role') | first }}" },
  { name: "filter-map-default", template: "{{ messages | map(attribute='name', default='anon') | join(',') }} {{ [1, 2] | map('string') | join('') }}" },
  { name: "filter-tojson", template: "{{ messages[2] | tojson }}\n{{ messages[2].tool_calls | tojson(indent=2) }}\n{{ {'b': 1, 'a': 'é\"\\\\'} | tojson(sort_keys=true) }}\n{{ 'ünï' | tojson(ensure_ascii=true) }}\n{{ [] | tojson(indent=4) }} {{ {} | tojson(indent=4) }} {{ [1, [2]] | tojson(separators=[',', ':']) }}" },
  { name: "filter-indent", template: "[{{ 'a\\nb\\n\\nc' | indent }}][{{ 'a\\nb' | indent(2, true) }}][{{ 'a\\n\\nb\\n' | indent(2, blank=true) }}][{{ 'x\\ny' | indent('>> ') }}]" },
  { name: "filter-numbers", template: "{{ -3 | abs }} {{ '42' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ [1, 2, 3] | sum }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }}" },
  { name: "filter-sort-unique-reverse", template: "{{ [3, 1, 2] | sort | list }} {{ ['b', 'A', 'c'] | sort | list }} {{ [3, 1, 2] | sort(reverse=true) | list }} {{ messages | sort(attribute='role') | map(attribute='role') | list }} {{ ['a', 'A', 'b', 'a'] | unique | list }} {{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }}" },
  { name: "filter-dictsort-wordcount", template: "{{ {'b': 1, 'a': 2} | dictsort }} {{ 'one two  three' | wordcount }}" },
  { name: "filter-safe-escape", template: "{{ '<b>' | safe }} {{ '<b>&\"\\'' | e }}" },
  // map/select/reject/items return generators in Jinja2: always true, no len(), not JSON, empty for a false input
  { name: "generator-truthiness", template: "{{ 'yes' if [] | select else 'no' }} {{ 'yes' if [] | select | list else 'no' }} {{ none | selectattr('x') | list }} {{ missing | map(attribute='x') | list }} {{ messages | selectattr('role', 'eq', 'user') | list | length }}" },
  { name: "generator-has-no-length", template: "{{ messages | selectattr('role', 'eq', 'user') | length }}" },
  { name: "generator-not-json", template: "{{ messages | map(attribute='role') | tojson }}" },
  // methods
  { name: "string-methods", template: "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b-c'.rsplit('-', 1) }} {{ '--x--'.strip('-') }} {{ '  x  '.lstrip() }}| {{ '  x  '.rstrip() }}| {{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'aaa'.replace('a', 'b') }} {{ 'hello'.find('l') }} {{ 'hello'.count('l') }} {{ '-'.join(['a', 'b']) }}" },
  { name: "string-format", template: "{{ '{} and {}'.format('a', 1) }} {{ '{0}{1}{0}'.format('x', 'y') }} {{ '{name}!'.format(name='hi') }} {{ '{{literal}}'.format() }}" },
  { name: "dict-methods", template: "{% set d = {'a': 1, 'b': none} %}{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d.get('a') }} {{ d.get('z', 'dflt') }} {{ d.get('z') }} {{ d['b'] }}" },
  { name: "non-string-dict-keys", template: "{% set d = {0: 'zero', 512: 128, 1.5: 'f', none: 'n', true: 'one'} %}{{ d[512] }} {{ d[0] }} {{ d[1] }} {{ d[1.5] }} {{ d[none] }} {{ 512 in d }} {{ '512' in d }} {{ d.get(0) }} {{ d | length }} {% for k in d %}{{ k }},{% endfor %} {{ d }} {{ d | tojson }} {{ {'\u0000x': 1} | tojson }}" },
  { name: "list-methods", template: "{{ [1, 2, 3, 2].index(2) }} {{ [1, 2, 3, 2].count(2) }}" },
  { name: "strip-chars", template: "[{{ '\\n\\n  text \\n'.lstrip('\\n') }}][{{ 'xxaxx'.rstrip('x') }}][{{ '<<a>>'.strip('<>') }}]" },
  // globals
  { name: "range", template: "{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(10, 0, -3) | list }} {{ range(0) | list }}" },
  { name: "strftime-now", template: "{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%H:%M') }}" },
  { name: "raise-exception", template: "{% if messages | length > 2 %}{{ raise_exception('Too many messages: ' ~ (messages | length)) }}{% endif %}ok" },
  { name: "bos-eos-and-generation-prompt", template: "{{ bos_token }}{% for m in messages %}{{ m.role }}{% if not loop.last %} {% endif %}{% endfor %}{% if add_generation_prompt %}{{ eos_token }}{% endif %}" },
];

export const featureVariables = { messages: msgs, bos_token: "<s>", eos_token: "</s>", add_generation_prompt: true };
