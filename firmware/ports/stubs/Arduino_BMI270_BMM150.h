/* Stand-in: the port only needs the library in the build for bmi270_config_file (see README.md). */
#pragma once
