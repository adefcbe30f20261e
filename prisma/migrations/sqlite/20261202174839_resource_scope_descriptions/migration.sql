-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_ResourceServer" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "identifier" TEXT NOT NULL,
    "name" TEXT,
    "scopes" TEXT NOT NULL,
    "scopeDescriptions" TEXT NOT NULL DEFAULT '{}',
    "accessTokenTtl" INTEGER NOT NULL,
    "signingAlg" TEXT NOT NULL DEFAULT 'RS256',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_ResourceServer" ("accessTokenTtl", "createdAt", "id", "identifier", "name", "scopes", "signingAlg", "updatedAt") SELECT "accessTokenTtl", "createdAt", "id", "identifier", "name", "scopes", "signingAlg", "updatedAt" FROM "ResourceServer";
DROP TABLE "ResourceServer";
ALTER TABLE "new_ResourceServer" RENAME TO "ResourceServer";
CREATE UNIQUE INDEX "ResourceServer_identifier_key" ON "ResourceServer"("identifier");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
