// A fixture for the tests of a binary's flags -> configuration conversion
// (server/config, gateway/config). Flags are set through the config-file
// path (process::ApplyConfigText), i.e. by each flag's own parser, exactly
// as an operator's file or environment sets them; every test starts from
// the defaults.
#ifndef LUMOKEYS_TESTS_SHARED_PROCESS_FLAG_CONVERSION_TEST_H_
#define LUMOKEYS_TESTS_SHARED_PROCESS_FLAG_CONVERSION_TEST_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/shared/process/flag_config.h"

namespace lumo::process {

// `Convert` is the conversion under test: positional arguments (argv[0]
// first) -> the configuration the parsed flags describe.
template <typename Config,
          absl::StatusOr<Config> (*Convert)(const std::vector<char*>&)>
class FlagConversionTest : public ::testing::Test {
 protected:
  // The configuration for `settings` (config-file text) and the positional
  // arguments `words` after the program name.
  absl::StatusOr<Config> ConfigFor(const std::string& settings,
                                   std::vector<std::string> words = {}) {
    absl::Status applied = ApplyConfigText(settings, "test.conf");
    EXPECT_TRUE(applied.ok()) << applied;
    words.insert(words.begin(), "binary-under-test");
    words_ = std::move(words);
    std::vector<char*> args;
    for (std::string& word : words_) args.push_back(word.data());
    return Convert(args);
  }

  // The message of a conversion that must fail with `code`.
  std::string Refusal(
      const std::string& settings,
      absl::StatusCode code = absl::StatusCode::kInvalidArgument,
      std::vector<std::string> words = {}) {
    absl::StatusOr<Config> config = ConfigFor(settings, std::move(words));
    EXPECT_FALSE(config.ok()) << settings;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), code) << config.status();
    return std::string(config.status().message());
  }

 private:
  absl::FlagSaver saver_;
  std::vector<std::string> words_;  // what the last arguments point into
};

}  // namespace lumo::process

#endif  // LUMOKEYS_TESTS_SHARED_PROCESS_FLAG_CONVERSION_TEST_H_
