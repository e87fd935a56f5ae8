// Export renderings of audit events (server/rpc/audit_format.h): RFC 4180
// quoting, formula neutralisation, the JSON shape.
#include "server/rpc/audit_format.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumo::rpc {
namespace {

TEST(CsvCellTest, PlainValuesAreUnchanged) {
  EXPECT_EQ(CsvCell(""), "");
  EXPECT_EQ(CsvCell("api_key.used"), "api_key.used");
  EXPECT_EQ(CsvCell("a=b"), "a=b");
}

TEST(CsvCellTest, FormulaStartsAreNeutralised) {
  for (const char* value : {"=1+1", "+1", "-1", "@SUM(A1)", "\tx"}) {
    EXPECT_EQ(CsvCell(value), std::string("'") + value) << value;
  }
  // A CR also needs quotes.
  EXPECT_EQ(CsvCell("\rx"), "\"'\rx\"");
  EXPECT_EQ(CsvCell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
}

TEST(CsvCellTest, QuotesPerRfc4180) {
  EXPECT_EQ(CsvCell("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvCell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvCell("two\r\nlines"), "\"two\r\nlines\"");
  EXPECT_EQ(CsvCell("=a,b"), "\"'=a,b\"");
}

TEST(AuditFormatTest, CsvAndJsonOfOneEvent) {
  storage::StoredAuditEvent stored;
  stored.id = 42;
  stored.created_at = absl::FromUnixMicros(1'700'000'000'123'456);
  stored.event.action = "api_key.created";
  stored.event.category = "api_keys";
  stored.event.actor_type = "api_key";
  stored.event.actor_id = "AAAAAAAAAAAA";
  stored.event.user_agent = "-x";
  stored.event.metadata_json = "{\"name\":\"=1,2\"}";
  lumo::audit::v1::AuditEvent event;
  ToProto(stored, &event);
  EXPECT_FALSE(event.has_target());

  const std::string csv = RenderAuditCsv({event});
  EXPECT_EQ(csv.substr(csv.find("\r\n") + 2),
            "42,2023-11-14T22:13:20.123456Z,api_key.created,api_keys,"
            "api_key,AAAAAAAAAAAA,,,,success,false,,'-x,,"
            "\"{\"\"name\"\":\"\"=1,2\"\"}\"\r\n");

  const std::string json = RenderAuditJson({event});
  EXPECT_EQ(json,
            "[{\"id\":\"42\",\"action\":\"api_key.created\","
            "\"category\":\"api_keys\",\"actor\":{\"type\":\"api_key\","
            "\"id\":\"AAAAAAAAAAAA\",\"email\":null},\"target\":null,"
            "\"outcome\":\"success\",\"suspicious\":false,\"ipAddress\":\"\","
            "\"userAgent\":\"-x\",\"requestId\":\"\","
            "\"metadata\":{\"name\":\"=1,2\"},"
            "\"timestamp\":\"2023-11-14T22:13:20.123456Z\"}]");
}

}  // namespace
}  // namespace lumo::rpc
