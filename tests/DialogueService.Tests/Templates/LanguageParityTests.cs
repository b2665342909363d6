using System.Text.Json.Nodes;
using ChatServices.DialogueService.Templates;
using Xunit.Abstractions;

namespace ChatServices.DialogueService.Tests.Templates;

/// <summary>
/// Small templates, one per language feature (whitespace control, numbers, strings, operators, tests,
/// filters, loops, set, macros, errors), rendered by our engine and by npm @huggingface/jinja in one
/// node process; outputs must be byte-identical, and a template that fails in one must fail in both.
/// </summary>
public sealed class LanguageParityTests(ITestOutputHelper output)
{
    private static readonly JsonObject Variables = (JsonObject)JsonNode.Parse("""
        {
          "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi there"},
            {"role": "user", "content": "bye"}
          ],
          "add_generation_prompt": true,
          "bos_token": "<s>",
          "eos_token": "</s>",
          "user": {"name": "Ada", "age": 36, "tags": ["a", "b"], "score": 2.5},
          "n": 7,
          "f": 2.5,
          "items": [3, 1, 2],
          "words": ["b", "A", "c"],
          "obj": {"b": 1, "a": 2, "10": 3, "2": 4},
          "empty": "",
          "nothing": null,
          "flag": false,
          "text": "  Hello World  ",
          "uni": "héllo wörld ß 🤖"
        }
        """)!;

    private static readonly string[] Templates =
    [
        // whitespace control, trim_blocks / lstrip_blocks, comments, the generation tag
        "a  {%- if true %} b {% endif -%}  c",
        "line1\n  {% if true %}\n    x\n  {% endif %}\nline2\n",
        "{# comment #}\n{#- c -#}  x  {{- ' y ' -}}  z",
        "a\n{% for i in items %}\n  {{ i }}\n{% endfor %}\nb",
        "  {{ 'kept indent' }}\n\t{%- if true %}tabs{% endif %}",
        "a {% generation %} b {%- endgeneration %} c",
        "x  \n {%- generation -%}  y {% endgeneration %}\n z {%generation%}{%endgeneration%} w",
        "x{#- trailing -#}\n\n  y",
        "{% if true %}\r\n{% endif %}|\r\n  {% if true %}\r\n{% endif %}|",
        "{%+ if true %}plus{% endif %}",
        // numbers
        "{{ 1 }} {{ 1.0 }} {{ 2.50 }} {{ -0.0 }} {{ -5 }} {{ 0.000001 }} {{ 0.0000001 }} {{ 123456789012345678901234.5 }}",
        "{{ 10 / 4 }} {{ 10 // 4 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 7.5 // 2 }}",
        "{{ 1000000 * 1000000 * 1000000 * 100 }} {{ 1000000 * 1000000 * 1000000 * 10 }} {{ 1 / 0 }} {{ -1 / 0 }}",
        "{{ 3 * 1.5 }} {{ 7 / 7 }} {{ 4.7 | int }} {{ '42abc' | int }} {{ 'x' | int }} {{ ' 3.5e2x' | float }} {{ 5 | float }} {{ -3 | abs }} {{ true | int }} {{ 'x' | int(9) }}",
        "{{ 1e3 }}",
        "{{ 0.1 * 3 }} {{ 2 ** 53 }} {{ 2 ** 70 }} {{ 1.5 / 10000000 }} {{ 123.456 }} {{ 100 / 3 }} {{ 1 / 1000000 }} {{ 10 ** 21 }} {{ 10 ** 20 }} {{ 10.0 ** 21 }} {{ 2.5 * 4 }} {{ 7 / 2 | int }}",
        "{{ n - 1 }}{{ n-1 }}{{ -n }}{{ +f }}{{ - - 3 }}",
        // strings
        "{{ 'a' ~ 1 ~ 2.0 ~ true ~ [1, 'x'] }}",
        "{{ 'a' ~ none }}",
        "{{ 'a' + 1 }} {{ 1.0 + 'a' }} {{ 'a' + user }}",
        "{{ text.strip() }}|{{ text.lstrip() }}|{{ text.rstrip() }}|{{ text | trim }}|{{ text.upper() }}|{{ text.lower() }}|{{ text.title() }}|{{ 'hello wORLD'.capitalize() }}|{{ '\\nx\\n'.strip('\\n') }}",
        "{{ uni | upper }} {{ uni.title() }} {{ uni | length }} {{ uni[1] }} {{ uni[::-1] }} {{ uni[-3:] }} {{ uni[1:4] }} {{ uni | capitalize }}",
        "{{ 'a,b,,c'.split(',') }} {{ '  a  b c '.split() }} {{ 'a b c d'.split(' ', 2) }} {{ ' a b c'.split(none, 1) }} {{ 'a  b'.split(' ') }}",
        "{{ 'abc'.split('') }}",
        "{{ 'aaa'.replace('a', 'b', 2) }} {{ 'abc'.replace('', '-') }} {{ 'x.y.z' | replace('.', '/') }} {{ 'aXbX' | replace('X', '', count=1) }}",
        "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'ell' in 'hello' }} {{ 'z' not in 'hello' }}",
        "{{ 'abc'[0] }}{{ 'abc'[-1] }}{{ 'abc'[5] }}{{ 'abc'.length }}",
        "{{ 'it' \"'s\" }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\there' }} {{ '\\u00e9\\x41' }}",
        "{{ '\\q' }}",
        "{{ 'ΑΣ ΟΔΟΣ.' | lower }}|{{ 'straße ﬁne ŉ' | upper }}|{{ 'İstanbul' | lower }}|{{ 'ǅ' | lower }}{{ 'ǆ' | upper }}|{{ 'ß' | capitalize }}|{{ 'ÉCOLE' is upper }}",
        "{{ 'ßŉǰΐΰևẖẗẘẙẚὐὒὔὖᾶῆῒΐῖῗῢΰῤῦῧῶᾀᾁᾂᾃᾄᾅᾆᾇᾈᾉᾊᾋᾌᾍᾎᾏᾐᾗᾘᾟᾠᾧᾨᾯᾳᾼῃῌῳῼᾲᾴῂῄῲῴᾷῇῷﬀﬁﬂﬃﬄﬅﬆﬓﬔﬕﬖﬗ ǅǈǋǲ ͅ 𐐨 ꭰ' | upper }}",
        "{{ 'ΣΑΣ Σ ΑΣ. Α.Σ ΑΣΑ ΑΣ\\'Σ ΣΑ' | lower }}|{{ 'ǅǈ 𐐀 Ꭰ İI' | lower }}|{{ 'σας' | upper }}",
        "{{ 'x' | indent }} {{ 'a\\n\\nb\\nc' | indent(2) }} {{ 'a\\nb' | indent(2, true) }} {{ 'a\\n\\nb' | indent(width=1, blank=true) }}",
        // comparisons, logic, tests
        "{{ 1 == 1.0 }} {{ 1 == true }} {{ '1' == 1 }} {{ none == none }} {{ [] == [] }} {{ 'a' != 'b' }} {{ 0 == false }} {{ '' == 0 }} {{ items == items }} {{ nothing == undefined_var }}",
        "{{ 1 < 2 }} {{ 2 >= 2.0 }} {{ 1 > 2 }}",
        "{{ 'a' < 'b' }}",
        "{{ none or 'x' }} {{ 0 and 'y' }} {{ [] or 'empty' }} {{ not none }} {{ not [1] }} {{ 'a' if n > 5 else 'b' }} [{{ 'c' if n > 10 }}] {{ 'x' if false else 'y' if true else 'z' }}",
        "{{ undefined_var }}|{{ undefined_var is defined }}|{{ nothing is none }}|{{ user is mapping }}|{{ items is iterable }}|{{ text is string }}|{{ n is number }}|{{ f is integer }}|{{ n is odd }}|{{ n is even }}|{{ flag is false }}|{{ flag is boolean }}|{{ 'abc' is lower }}|{{ range is callable }}|{{ nothing is not none }}|{{ user is sequence }}|{{ 'ABC' is upper }}",
        "{{ missing.y }}|{{ nothing.y }}|{{ n.y }}|{{ user.nope }}",
        "{{ undefined_var + 1 }}",
        "{{ nothing + 1 }}",
        "{{ 3 in items }} {{ '3' in items }} {{ 'a' in obj }} {{ 'name' in user }} {{ 1 in undefined_var }} {{ 1 not in undefined_var }} {{ 'x' not in items }}",
        // lists and mappings
        "{{ items }}|{{ user }}|{{ obj }}|{{ words }}|{{ [] }}|{{ {} }}|{{ [nothing, flag, f] }}",
        "{{ (1, 2) }}",
        "{{ items | length }} {{ items | first }} {{ items | last }} {{ items | reverse }} {{ items | sort }} {{ words | sort }} {{ words | sort(reverse=true) }} {{ words | sort(case_sensitive=true) }}",
        "{{ items | join(', ') }} {{ items | join }} {{ [1, none, 'a', 2.0] | join('-') }} {{ [1, 1, 2, '1'] | unique }} {{ items | list }} {{ items | string }} {{ 'abc' | join('.') }}",
        "{{ user | tojson }} {{ user | tojson(indent=2) }} {{ uni | tojson }} {{ uni | tojson(ensure_ascii=true) }} {{ obj | tojson(sort_keys=true) }} {{ user | tojson(separators=(',', ':')) }}",
        "{{ 'a\"b\\\\c\\n\\u0001' | tojson }} {{ 2.0 | tojson }} {{ [] | tojson(indent=2) }} {{ {} | tojson(indent=2) }} {{ undefined_var | tojson }} {{ [[1, [2]], {'k': []}] | tojson(indent=1) }}",
        "{{ (1, 2) | tojson }}",
        "{{ user.items() }} {{ user.keys() }} {{ user.values() }} {{ user.get('name') }} {{ user.get('zzz') }} {{ user.get('zzz', 'dflt') }} {{ user | items }} {{ user | length }} {{ obj | dictsort }} {{ user['name'] }} {{ user.tags[1] }} {{ user.tags.length }}",
        "{% for k, v in user.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in obj %}{{ k }},{% endfor %}|{% for k, v in obj | dictsort %}{{ k }}{{ v }}{% endfor %}",
        "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='content') | join('|') }} {{ messages | map(attribute='missing', default='d') | join }} {{ messages | selectattr('content') | list | length }}",
        "{{ messages[::-1] | map(attribute='role') | join(',') }} {{ items[1:] }} {{ items[:-1] }} {{ items[::2] }} {{ items[5:] }} {{ items[-10:2] }} {{ items[::-2] }} {{ items[0:3:0] }}",
        "{{ [1, 2] + [3] }} {{ {'a': 1, 'b': [1, {'c': none}]} }} {{ {'a': 1}.a }} {{ [1, 2][1] }} {{ [1, 2][-1] }}",
        "{{ x | default('dflt') }} {{ '' | default('dflt', true) }} {{ nothing | default('d') }} {{ flag | default('d', boolean=true) }}",
        "{{ x | default }}",
        // loops
        "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem.role if loop.previtem is defined }}/{{ loop.nextitem.role if loop.nextitem is defined }};{% endfor %}",
        "{% for m in items %}{{ loop }}|{{ loop | tojson }}|{{ 'index' in loop }}|{{ loop | length }}|{{ loop.get('first') }}|{{ loop.nope }}|{{ loop | items | length }};{% endfor %}",
        "{% for i in items if i > 1 %}{{ i }}:{{ loop.index }},{% else %}none{% endfor %}",
        "{% for i in [] %}x{% else %}empty{% endfor %}{% for i in items if i > 5 %}x{% else %}filtered{% endfor %}",
        "{% for i in range(5) %}a{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
        "{% for i in range(5) %}a{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}",
        "{% for i in range(3) %}{% continue %}{% else %}all skipped{% endfor %}",
        "{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}|{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}|{{ range(3) }}",
        "{% set total = 0 %}{% for i in items %}{% set total = total + i %}{% endfor %}{{ total }}",
        "{% set ns = namespace(total=0, names=[]) %}{% for i in items %}{% set ns.total = ns.total + i %}{% set ns.names = ns.names + [i] %}{% endfor %}{{ ns.total }} {{ ns.names }} {{ ns }}",
        "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}",
        "{% for c in 'abc' %}{{ c }}{% endfor %}",
        "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
        "{% for a, b in [[1, 2, 3]] %}{{ a }}{% endfor %}",
        "{% for m in messages %}{% set last = m.role %}{% endfor %}[{{ last }}]",
        // set
        "{% set a, b = [1, 2] %}{{ a }}{{ b }} {% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]",
        "{% set d = {'k': 'v'} %}{{ d.k }}{% set d.k = 'w' %}",
        "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}",
        // macros, call, filter blocks
        "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ada') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }} {{ greet() }}",
        "{% macro m() %}{{ varargs | length }}{{ kwargs | tojson }}{% endmacro %}{{ m(1, 2, a=3) }}",
        "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}",
        "{% macro outer(x) %}[{{ x }}:{{ caller() }}]{% endmacro %}{% call outer(1) %}inside{% endcall %}",
        "{% filter upper %}shout {{ 'this' }}{% endfilter %}",
        "{% macro show() %}{{ who }}{% endmacro %}{% for who in ['a', 'b'] %}{{ show() }}{% endfor %}",
        // globals and errors
        "{{ strftime_now('%Y') | length }} {{ true }} {{ True }} {{ none }} {{ None }}|{{ False }}",
        "{{ raise_exception('boom') }}",
        "{% if %}",
        "{{ 1 + }}",
        "{% for x in %}{% endfor %}",
        "{% endif %}",
        "{{ foo( }}",
        "{% unknown %}",
        "{{ messages[0].content.nope() }}",
        "{{ 'a' | nofilter }}",
        "{{ x is nosuchtest }}",
        "{% if true %}unclosed",
        "{{ 'unterminated }}",
        "{{ 1 | round }}",
        "{% break %}",
        "{{ user[0] }}",
        "{{ nothing[0] }}",
        "{{ items['x'] }}|{{ items.length }}",
        "{{ {'a': 1} | items }} {{ {'a': 1} | string }}",
    ];

    [Fact]
    public void Language_features_render_identically_to_huggingface_jinja()
    {
        var expected = ReferenceRenderer.RenderEach(Templates.Select(t => (t, Variables)).ToList());
        var identical = 0;
        var rejected = 0;
        var failures = new List<string>();
        for (var i = 0; i < Templates.Length; i++)
        {
            RenderOutcome actual;
            try
            {
                actual = new RenderOutcome(ChatTemplate.Parse(Templates[i]).Render(Variables), null);
            }
            catch (TemplateException error)
            {
                actual = new RenderOutcome(null, error.Message);
            }
            var reference = expected[i];
            var label = RenderOutcome.Quote(Templates[i]);
            if (reference.Error is not null || actual.Error is not null)
            {
                if (reference.Error is not null && actual.Error is not null)
                {
                    rejected++;
                    output.WriteLine($"rejected by both: {label}: reference \"{reference.Error}\", ours \"{actual.Error}\"");
                }
                else failures.Add($"{label}: reference gave {reference}, ours gave {actual}");
            }
            else if (reference.Output != actual.Output)
            {
                failures.Add($"{label}: {ReferenceParityTests.FirstDifference(reference.Output!, actual.Output!)}");
            }
            else
            {
                identical++;
            }
        }
        output.WriteLine($"{identical} identical, {rejected} rejected by both, of {Templates.Length} templates");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
