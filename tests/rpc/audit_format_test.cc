// Export renderings of audit events (server/rpc/audit_format.h): RFC 4180
// quoting, formula neutralisation, the JSON shape.
#include "server/rpc/audit_format.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"

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

TEST(CsvCellTest, ALeadingApostropheIsDoubledSoTheValueComesBack) {
  EXPECT_EQ(CsvCell("'=1"), "''=1");
  EXPECT_EQ(CsvCell("'plain"), "''plain");
}

TEST(AuditFormatTest, CsvAndJsonOfOneEventWithItsChain) {
  storage::StoredChainRow row;
  storage::StoredAuditEvent& stored = row.row;
  stored.id = 42;
  stored.tenant_id = 7;
  stored.lane = 3;
  stored.seq = 9;
  stored.created_at = absl::FromUnixMicros(1'700'000'000'123'456);
  stored.event.action = "api_key.created";
  stored.event.category = "api_keys";
  stored.event.actor_type = "api_key";
  stored.event.actor_id = "AAAAAAAAAAAA";
  stored.event.user_agent = "-x";
  stored.event.metadata_json = "{\"name\":\"=1,2\", \"n\": 1}";
  core::Digest prev{}, hash{};
  prev[0] = 0xab;
  hash[31] = 0x01;
  row.prev_hash = prev;
  row.hash = hash;
  row.hash_version = 2;
  const std::string prev_hex = "ab" + std::string(62, '0');
  const std::string hash_hex = std::string(62, '0') + "01";

  std::string csv;
  AppendAuditCsvRow(row, nullptr, &csv);
  // The metadata cell is the stored text itself (what the hash covers).
  EXPECT_EQ(csv,
            "42,2023-11-14T22:13:20.123456Z,api_key.created,api_keys,"
            "api_key,AAAAAAAAAAAA,,,,success,false,,'-x,,"
            "\"{\"\"name\"\":\"\"=1,2\"\", \"\"n\"\": 1}\",7,3,9," +
                prev_hex + "," + hash_hex + ",2\r\n");
  EXPECT_EQ(AuditCsvHeader(),
            "id,timestamp,action,category,actor_type,actor_id,actor_email,"
            "target_type,target_id,outcome,suspicious,ip_address,user_agent,"
            "request_id,metadata,tenant_id,chain_lane,seq,prev_hash,hash,"
            "hash_version\r\n");

  std::string json;
  const std::string email = "a@example.com";
  AppendAuditJsonObject(row, &email, &json);
  EXPECT_EQ(json,
            "{\"id\":\"42\",\"action\":\"api_key.created\","
            "\"category\":\"api_keys\",\"actor\":{\"type\":\"api_key\","
            "\"id\":\"AAAAAAAAAAAA\",\"email\":\"a@example.com\"},"
            "\"target\":null,\"outcome\":\"success\",\"suspicious\":false,"
            "\"ipAddress\":\"\",\"userAgent\":\"-x\",\"requestId\":\"\","
            "\"metadata\":{\"name\":\"=1,2\", \"n\": 1},"
            "\"timestamp\":\"2023-11-14T22:13:20.123456Z\","
            "\"chain\":{\"tenantId\":7,\"lane\":3,\"seq\":9,\"prevHash\":\"" +
                prev_hex + "\",\"hash\":\"" + hash_hex +
                "\",\"hashVersion\":2}}");
}

TEST(AuditFormatTest, RowsOutsideTheChainHaveEmptyChainCells) {
  storage::StoredChainRow row;
  row.row.id = 1;
  row.row.event.metadata_json = "not an object";
  std::string csv;
  AppendAuditCsvRow(row, nullptr, &csv);
  EXPECT_TRUE(absl::EndsWith(csv, ",{},0,0,,,,0\r\n")) << csv;
}

}  // namespace
}  // namespace lumo::rpc
