namespace ChatServices.InferenceService.Tests.Constraints;

/// <summary>Schemas and grammars shared by the constraint tests.</summary>
internal static class TestSchemas
{
    /// <summary>
    /// A strict-mode schema: objects, a nested object, an array with items, enum, bounded integer and number,
    /// boolean, anyOf, $ref into $defs, strings with maxLength (so that an untrained model's strings end).
    /// </summary>
    public const string Strict = """
        {
          "type": "object",
          "properties": {
            "name": { "type": "string", "maxLength": 12 },
            "age": { "type": "integer", "minimum": 0, "maximum": 120 },
            "active": { "type": "boolean" },
            "role": { "enum": ["admin", "user", "guest"] },
            "address": {
              "type": "object",
              "properties": {
                "city": { "type": "string", "maxLength": 10 },
                "zip": { "type": "string", "pattern": "^[0-9]{5}$" }
              },
              "required": ["city", "zip"],
              "additionalProperties": false
            },
            "tags": { "type": "array", "items": { "type": "string", "maxLength": 6 }, "maxItems": 3 },
            "contact": { "anyOf": [{ "$ref": "#/$defs/account" }, { "type": "null" }] },
            "score": { "type": "number", "minimum": -1, "maximum": 1 }
          },
          "required": ["name", "age", "active", "role", "address", "tags", "contact", "score"],
          "additionalProperties": false,
          "$defs": {
            "account": {
              "type": "object",
              "properties": { "user": { "type": "string", "maxLength": 8 }, "verified": { "type": "boolean" } },
              "required": ["user", "verified"],
              "additionalProperties": false
            }
          }
        }
        """;

    /// <summary>Optional properties, a recursive $ref, integers with exclusive bounds, formats and const.</summary>
    public const string Loose = """
        {
          "type": "object",
          "properties": {
            "id": { "type": "string", "format": "uuid" },
            "kind": { "const": "node" },
            "weight": { "type": "integer", "exclusiveMinimum": -5, "exclusiveMaximum": 1000 },
            "when": { "type": "string", "format": "date" },
            "children": { "type": "array", "items": { "$ref": "#" }, "maxItems": 2 },
            "label": { "type": ["string", "null"], "maxLength": 4 }
          },
          "required": ["kind"]
        }
        """;

    /// <summary>The shape of a Hermes/Qwen tool call: literal text with newlines around a JSON Schema rule.</summary>
    public const string ToolCallGbnf = "root ::= \"<tool_call>\\n\" call \"\\n</tool_call>\"\n";

    public const string ToolCallSchema = """
        {
          "type": "object",
          "properties": {
            "name": { "const": "get_weather" },
            "arguments": {
              "type": "object",
              "properties": { "city": { "type": "string", "maxLength": 10 }, "unit": { "enum": ["celsius", "fahrenheit"] } },
              "required": ["city", "unit"],
              "additionalProperties": false
            }
          },
          "required": ["name", "arguments"],
          "additionalProperties": false
        }
        """;
}
