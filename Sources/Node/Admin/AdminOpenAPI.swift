/// The admin API's OpenAPI 3.1 document, served at `/admin/openapi.json`; `docs/admin-openapi.json` is the
/// same text (a test keeps them equal).
enum AdminOpenAPI {
    static let document = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "llm-proxy admin API",
    "version": "0.1.0",
    "description": "Connections (provider keys, stored encrypted), virtual keys and usage. Every request needs `Authorization: Bearer <LLM_PROXY_ADMIN_KEY>`. Errors: `{\"error\":{\"message\",\"type\",\"code\"}}`."
  },
  "servers": [
    {
      "url": "/"
    }
  ],
  "security": [
    {
      "adminKey": []
    }
  ],
  "components": {
    "securitySchemes": {
      "adminKey": {
        "type": "http",
        "scheme": "bearer"
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "message",
              "type",
              "code"
            ],
            "properties": {
              "message": {
                "type": "string"
              },
              "type": {
                "type": "string"
              },
              "code": {
                "type": "string"
              }
            }
          }
        }
      },
      "Connection": {
        "type": "object",
        "required": [
          "id",
          "name",
          "provider",
          "endpoint",
          "options",
          "created_at",
          "updated_at"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "provider": {
            "type": "string",
            "enum": [
              "openai",
              "azure",
              "anthropic"
            ]
          },
          "endpoint": {
            "type": "string"
          },
          "options": {
            "type": "object",
            "additionalProperties": {
              "type": "string"
            }
          },
          "created_at": {
            "type": "string"
          },
          "updated_at": {
            "type": "string"
          }
        }
      },
      "NewConnection": {
        "type": "object",
        "required": [
          "name",
          "provider",
          "api_key"
        ],
        "properties": {
          "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": "^[^\\n\\r]*\\S[^\\n\\r]*$"
          },
          "provider": {
            "type": "string",
            "enum": [
              "openai",
              "azure",
              "anthropic"
            ]
          },
          "endpoint": {
            "type": "string",
            "pattern": "^[hH][tT][tT][pP][sS]?://[^\\s/?#@]+(/[^\\s?#]*)?$"
          },
          "api_key": {
            "type": "string",
            "pattern": "^\\S+$"
          },
          "api_version": {
            "type": "string"
          }
        },
        "if": {
          "properties": {
            "provider": {
              "const": "azure"
            }
          },
          "required": [
            "provider"
          ]
        },
        "then": {
          "required": [
            "endpoint"
          ]
        }
      },
      "Usage": {
        "type": "object",
        "required": [
          "vkey_id",
          "model",
          "requests",
          "prompt_tokens",
          "completion_tokens",
          "total_tokens"
        ],
        "properties": {
          "vkey_id": {
            "type": "string"
          },
          "model": {
            "type": "string"
          },
          "requests": {
            "type": "integer"
          },
          "prompt_tokens": {
            "type": "integer"
          },
          "completion_tokens": {
            "type": "integer"
          },
          "total_tokens": {
            "type": "integer"
          }
        }
      },
      "VirtualKey": {
        "type": "object",
        "required": [
          "id",
          "name",
          "key_prefix",
          "connection_id",
          "tps",
          "burst",
          "tokens_per_minute",
          "max_concurrent",
          "models",
          "disabled",
          "created_at",
          "updated_at"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "key_prefix": {
            "type": "string"
          },
          "connection_id": {
            "type": "string"
          },
          "tps": {
            "type": "number"
          },
          "burst": {
            "type": "number"
          },
          "tokens_per_minute": {
            "type": "integer"
          },
          "max_concurrent": {
            "type": "integer"
          },
          "models": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "expires_at": {
            "type": "string"
          },
          "disabled": {
            "type": "boolean"
          },
          "created_at": {
            "type": "string"
          },
          "updated_at": {
            "type": "string"
          },
          "usage": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Usage"
            }
          }
        }
      },
      "KeyLimits": {
        "type": "object",
        "properties": {
          "tps": {
            "type": "number",
            "minimum": 0
          },
          "burst": {
            "type": "number",
            "minimum": 0
          },
          "tokens_per_minute": {
            "type": "integer",
            "minimum": 0
          },
          "max_concurrent": {
            "type": "integer",
            "minimum": 0
          },
          "expires_at": {
            "anyOf": [
              {
                "$ref": "#/components/schemas/When"
              },
              {
                "type": "string",
                "const": "never"
              }
            ],
            "description": "a date or date-time, a duration from now (30d, 12h), or never"
          },
          "models": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "disabled": {
            "type": "boolean"
          }
        }
      },
      "NewVirtualKey": {
        "allOf": [
          {
            "$ref": "#/components/schemas/KeyLimits"
          },
          {
            "type": "object",
            "required": [
              "name",
              "connection_id"
            ],
            "properties": {
              "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": "^[^\\n\\r]*\\S[^\\n\\r]*$"
              },
              "connection_id": {
                "type": "string"
              }
            }
          }
        ]
      },
      "CreatedKey": {
        "type": "object",
        "required": [
          "id",
          "key",
          "name",
          "connection_id"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "key": {
            "type": "string",
            "description": "shown once"
          },
          "name": {
            "type": "string"
          },
          "connection_id": {
            "type": "string"
          }
        }
      },
      "When": {
        "anyOf": [
          {
            "type": "string",
            "format": "date-time"
          },
          {
            "type": "string",
            "format": "date"
          },
          {
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?[smhd]$"
          }
        ]
      },
      "UsagePruned": {
        "type": "object",
        "required": [
          "deleted",
          "before"
        ],
        "properties": {
          "deleted": {
            "type": "integer",
            "minimum": 0
          },
          "before": {
            "type": "string",
            "format": "date-time"
          }
        }
      },
      "UsageRecord": {
        "type": "object",
        "required": [
          "id",
          "vkey_id",
          "connection_id",
          "model",
          "prompt_tokens",
          "completion_tokens",
          "total_tokens",
          "estimated",
          "status",
          "latency_ms",
          "stream",
          "started_at",
          "ended_at",
          "node_id"
        ],
        "properties": {
          "id": {
            "type": "string"
          },
          "vkey_id": {
            "type": "string"
          },
          "connection_id": {
            "type": "string"
          },
          "model": {
            "type": "string"
          },
          "prompt_tokens": {
            "type": "integer"
          },
          "completion_tokens": {
            "type": "integer"
          },
          "total_tokens": {
            "type": "integer"
          },
          "estimated": {
            "type": "boolean",
            "description": "true when the provider reported no usage and the tokens were estimated from bytes"
          },
          "status": {
            "type": "integer"
          },
          "latency_ms": {
            "type": "integer"
          },
          "stream": {
            "type": "boolean"
          },
          "started_at": {
            "type": "string",
            "format": "date-time"
          },
          "ended_at": {
            "type": "string",
            "format": "date-time"
          },
          "node_id": {
            "type": "string"
          }
        }
      },
      "UsageRecordsPage": {
        "type": "object",
        "required": [
          "records"
        ],
        "properties": {
          "records": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/UsageRecord"
            }
          },
          "next": {
            "type": "string",
            "description": "pass as `after` for the next page; absent on the last page"
          }
        }
      }
    },
    "responses": {
      "Error": {
        "description": "error",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "parameters": {
      "id": {
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
          "type": "string"
        }
      },
      "UsageKey": {
        "name": "vkey",
        "in": "query",
        "description": "only this virtual key",
        "schema": {
          "type": "string"
        }
      },
      "UsageSince": {
        "name": "since",
        "in": "query",
        "description": "records that started at or after this",
        "schema": {
          "$ref": "#/components/schemas/When"
        }
      },
      "UsageUntil": {
        "name": "until",
        "in": "query",
        "description": "records that started before this",
        "schema": {
          "$ref": "#/components/schemas/When"
        }
      }
    }
  },
  "paths": {
    "/admin/connections": {
      "get": {
        "operationId": "listConnections",
        "responses": {
          "200": {
            "description": "connections",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/Connection"
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "post": {
        "operationId": "addConnection",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/NewConnection"
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "created",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Connection"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "413": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/admin/connections/{id}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/id"
        }
      ],
      "get": {
        "operationId": "getConnection",
        "responses": {
          "200": {
            "description": "connection",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Connection"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "delete": {
        "operationId": "deleteConnection",
        "parameters": [
          {
            "name": "force",
            "in": "query",
            "schema": {
              "type": "boolean"
            }
          }
        ],
        "responses": {
          "204": {
            "description": "deleted"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/admin/vkeys": {
      "get": {
        "operationId": "listVirtualKeys",
        "responses": {
          "200": {
            "description": "virtual keys",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/VirtualKey"
                  }
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "post": {
        "operationId": "addVirtualKey",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/NewVirtualKey"
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "created; the key is shown once",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/CreatedKey"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "409": {
            "$ref": "#/components/responses/Error"
          },
          "413": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/admin/vkeys/{id}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/id"
        }
      ],
      "get": {
        "operationId": "getVirtualKey",
        "responses": {
          "200": {
            "description": "virtual key with usage",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/VirtualKey"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "patch": {
        "operationId": "updateVirtualKey",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/KeyLimits"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "updated",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/VirtualKey"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "413": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "delete": {
        "operationId": "deleteVirtualKey",
        "responses": {
          "204": {
            "description": "deleted"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/admin/usage": {
      "get": {
        "operationId": "usage",
        "parameters": [
          {
            "$ref": "#/components/parameters/UsageKey"
          },
          {
            "$ref": "#/components/parameters/UsageSince"
          },
          {
            "$ref": "#/components/parameters/UsageUntil"
          }
        ],
        "responses": {
          "200": {
            "description": "totals per key and model",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/Usage"
                  }
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "delete": {
        "operationId": "pruneUsage",
        "description": "Deletes every key's usage records that started before `before`, in batches of 5000 (one short transaction each), and audits it. Nodes also delete records older than their `--usage-retention` (90 days by default) on their own.",
        "parameters": [
          {
            "name": "before",
            "in": "query",
            "required": true,
            "schema": {
              "$ref": "#/components/schemas/When"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "how many records were deleted",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/UsagePruned"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/admin/usage/records": {
      "get": {
        "operationId": "usageRecords",
        "description": "Usage records, oldest first (by start time, then id), a page at a time: pass a page's `next` as `after` for the next one. Keyset paging: nothing is skipped or repeated while nodes write or prune.",
        "parameters": [
          {
            "$ref": "#/components/parameters/UsageKey"
          },
          {
            "$ref": "#/components/parameters/UsageSince"
          },
          {
            "$ref": "#/components/parameters/UsageUntil"
          },
          {
            "name": "after",
            "in": "query",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 10000,
              "default": 1000
            }
          }
        ],
        "responses": {
          "200": {
            "description": "a page of records",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/UsageRecordsPage"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    }
  }
}
"""#
}
